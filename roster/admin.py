from django.contrib import admin

from .models import Business, Person


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["name", "phone", "email", "dingtalk_user_id", "time_zone", "user"]
    search_fields = ["name", "phone", "email", "dingtalk_user_id", "user__username"]
    list_filter = ["time_zone", "language"]
    autocomplete_fields = ["user"]


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "technical_leader", "stability_contact"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["technical_leader", "stability_contact"]
    filter_horizontal = ["depends_on"]
