from django.db import connection

from accounts.models import Customer, Domain


def test_search_indexes_exist_and_are_trigram_on_postgresql(db):
    with connection.cursor() as cursor:
        for name, model in (("customer_name_trgm", Customer), ("domain_name_trgm", Domain)):
            assert name in connection.introspection.get_constraints(cursor, model._meta.db_table), name
            if connection.vendor == "postgresql":
                cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
                definition = cursor.fetchone()[0]
                assert "USING gin" in definition and "gin_trgm_ops" in definition, definition
