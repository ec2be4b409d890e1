"""CSV import: which kind of rows, the file (or its text pasted), and whether to only preview."""

from django import forms
from django.utils.translation import gettext, gettext_lazy as _

MAX_BYTES = 2 * 1024 * 1024


class BulkImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("What the file holds"), choices=[
        ("domains", _("Domains")), ("mailboxes", _("Mailboxes")), ("aliases", _("Aliases"))])
    file = forms.FileField(label=_("CSV file"), required=False)
    text = forms.CharField(label=_("…or paste its lines"), required=False, strip=False,
                           widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}))

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_BYTES:
                self.add_error("file", gettext("The file may be at most %(size)s MB.")
                               % {"size": MAX_BYTES // (1024 * 1024)})
                return data
            try:
                data["text"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                self.add_error("file", gettext("Save the file as UTF-8 CSV and upload it again."))
        elif not (data.get("text") or "").strip():
            self.add_error("file", gettext("Choose a CSV file, or paste its lines below."))
        return data
