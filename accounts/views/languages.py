"""A signed-in user's own panel language (every role: the form sits on the security page, which everyone has)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.forms.languages import LanguageForm
from accounts.languages import delete_language_cookie, set_language_cookie
from accounts.services.preferences import user_language_set
from accounts.views.common import client_ip, submit


@login_required
def account_language(request):
    user = request.user
    form = LanguageForm(request.POST if request.method == "POST" else None, initial={"language": user.language})
    changed = submit(request, form, lambda data: user_language_set(
        actor=user, user=user, language=data["language"], client_ip=client_ip(request)),
        failure=_("Your language was not changed; see the errors below."))
    if changed is None:
        return render(request, "accounts/self/language.html", {"form": form})
    if user.language:
        # The note below, and every page from now on, in the language just chosen.
        translation.activate(user.language)
        request.LANGUAGE_CODE = user.language
    if changed:
        messages.success(request, _("The panel now shows in the language you chose."))
    response = redirect("security:page")
    if user.language:
        set_language_cookie(response, user.language)
    else:
        delete_language_cookie(response)  # from now on the browser's Accept-Language decides
    return response
