"""The panel language a user chooses for themselves."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


def language_choices() -> list[tuple[str, str]]:
    # Each language by its own name ("Deutsch"), as people look for it in a list of languages they may not read.
    return [("", _("As my browser says")), *settings.LANGUAGES]


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"), choices=language_choices, required=False,
                                 help_text=_("The language of the panel and of the mail it sends you."))
