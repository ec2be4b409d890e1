"""Every field of every panel form has a label (and help text, when it has one) marked for translation: a lazy
translation, or the model field's verbose name when that is one; or a technical word that reads the same in every
language ("URL", "DKIM": the template lint's list). A label Django makes up from the field's name is English
only."""

import importlib
import pkgutil

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

import accounts.forms
from tests.i18n.lint import unmarked_words

MODULES = ["relay.panel.forms", "hostingmail.support.forms",
           *(f"accounts.forms.{m.name}" for m in pkgutil.iter_modules(accounts.forms.__path__))]


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def panel_forms() -> list[type]:
    for name in MODULES:
        importlib.import_module(name)
    return sorted({cls for cls in _subclasses(forms.BaseForm) if cls.__module__ in MODULES},
                  key=lambda cls: (cls.__module__, cls.__qualname__))


def _model_field(form_class, name):
    model = getattr(getattr(form_class, "_meta", None), "model", None)
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except Exception:
        return None


def problems_of(form_class) -> list[str]:
    found = []
    where = f"{form_class.__module__}.{form_class.__qualname__}"
    for name, field in form_class.base_fields.items():
        model_field = _model_field(form_class, name)
        label_ok = isinstance(field.label, Promise) or (field.label is not None and (
            not unmarked_words(field.label)
            or model_field is not None and isinstance(getattr(model_field, "verbose_name", None), Promise)))
        if not label_ok:
            found.append(f"{where}.{name}: label {field.label!r} is not marked for translation")
        if field.help_text and not isinstance(field.help_text, Promise) and unmarked_words(field.help_text) \
                and not (model_field is not None and isinstance(getattr(model_field, "help_text", None), Promise)):
            found.append(f"{where}.{name}: help_text {str(field.help_text)[:60]!r} is not marked for translation")
    return found


def test_every_panel_form_field_has_a_translated_label_and_help_text():
    classes = panel_forms()
    assert len(classes) > 20  # the walk found the panel's forms
    problems = [p for cls in classes for p in problems_of(cls)]
    assert problems == [], f"{len(problems)} fields:\n" + "\n".join(problems)


def test_the_language_form_passes():
    from accounts.forms.languages import LanguageForm

    assert LanguageForm in panel_forms() and problems_of(LanguageForm) == []


def test_the_check_catches_derived_and_plain_labels_and_help_texts():
    class Sample(forms.Form):
        mail_from = forms.CharField()  # Django would say "Mail from": English only
        note = forms.CharField(label="Note", help_text="Shown to support.")
        good = forms.CharField(label=gettext_lazy("Good"), help_text=gettext_lazy("Marked."))
        url = forms.CharField(label="URL", help_text="HTTPS")  # the same in every language

    assert problems_of(Sample) == [
        f"{__name__}.test_the_check_catches_derived_and_plain_labels_and_help_texts.<locals>.Sample.mail_from: "
        "label None is not marked for translation",
        f"{__name__}.test_the_check_catches_derived_and_plain_labels_and_help_texts.<locals>.Sample.note: "
        "label 'Note' is not marked for translation",
        f"{__name__}.test_the_check_catches_derived_and_plain_labels_and_help_texts.<locals>.Sample.note: "
        "help_text 'Shown to support.' is not marked for translation",
    ]


def test_a_model_form_field_takes_the_model_fields_verbose_name():
    from accounts.models import User

    class Own(forms.ModelForm):
        class Meta:
            model = User
            fields = ["language", "first_name", "username"]

    # language's verbose name is marked; Django's own User fields are too
    assert problems_of(Own) == []
