from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import AuditEntry, Customer, Domain, Mailbox, Reseller, SmtpCredential, User


@admin.register(User)
class HostingUserAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("Tenancy", {"fields": ("role", "reseller", "customer", "mailbox")}),)
    list_display = ("username", "role", "reseller", "customer", "is_active")
    list_filter = ("role", "is_active")


@admin.register(Reseller)
class ResellerAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "max_customers")
    search_fields = ("name",)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "reseller", "status")
    search_fields = ("name",)
    list_filter = ("status",)


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("name", "customer", "status", "verified_at")
    search_fields = ("name",)
    exclude = ("dkim_private_key",)


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ("local_part", "domain", "smtp_enabled", "is_active")
    search_fields = ("local_part", "domain__name")
    exclude = ("password_hash",)


@admin.register(SmtpCredential)
class SmtpCredentialAdmin(admin.ModelAdmin):
    list_display = ("username", "domain", "mailbox", "is_active", "last_used_at")
    search_fields = ("username",)
    exclude = ("secret_hash",)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "action", "object_repr")
    list_filter = ("action",)
    def has_change_permission(self, request, obj=None):
        return False
