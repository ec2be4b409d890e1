from accounts.management.commands.customer_suspend import Command as SuspendCommand


class Command(SuspendCommand):
    help = "Restore a suspended customer, with a reason."

    suspended = False
