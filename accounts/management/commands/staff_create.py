from accounts.management.cli import ServiceCommand, add_password_stdin, login, login_lines
from accounts.models import User
from accounts.services.tenants import user_create


class Command(ServiceCommand):
    help = "Create a support staff user (the provider's): sees every customer and may use the Django admin."

    def add_command_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        add_password_stdin(parser, "user's")

    def run(self, **options) -> dict:
        password, generated = self.password(options, panel=True)
        user = user_create(actor=None, username=options["username"], password=password,
                           role=User.Role.SUPPORT, email=options["email"])
        return {"id": user.pk, "role": user.role, **login(user.username, password, generated)}

    def text(self, result: dict) -> str:
        return "\n".join([f"Support user created (id {result['id']})."] + login_lines(result, "Support"))
