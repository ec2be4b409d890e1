"""Indexes for substring search ("contains", "icontains") that work on every database the project supports."""

from django.db.models import Index


class TrigramIndex(Index):
    """On PostgreSQL a GIN index with pg_trgm's gin_trgm_ops, so LIKE '%x%' (and UPPER(...) LIKE for icontains,
    when declared on Upper(field)) is an index scan instead of a scan of the whole table. Elsewhere a plain
    index on the same columns: harmless, and the migration stays one file for every database."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        # Imported here, on PostgreSQL only: django.contrib.postgres is not an installed app and needs psycopg.
        from django.contrib.postgres.indexes import GinIndex, OpClass
        from django.db.models import OrderBy
        from django.db.models.functions import Collate
        from django.db.models.indexes import IndexExpression

        # What django.contrib.postgres does when it is installed: without it, OpClass around an expression is
        # rendered inside the expression's parentheses, which PostgreSQL rejects.
        IndexExpression.register_wrappers(OrderBy, OpClass, Collate)

        # The extension ships with PostgreSQL (contrib); creating it needs the database owner or superuser.
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        if self.expressions:
            gin = GinIndex(*(OpClass(e, name="gin_trgm_ops") for e in self.expressions), name=self.name)
        else:
            gin = GinIndex(fields=self.fields, name=self.name, opclasses=["gin_trgm_ops"] * len(self.fields))
        return gin.create_sql(model, schema_editor, using=using, **kwargs)
