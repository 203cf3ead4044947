import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

e164 = RegexValidator(r"^\+[1-9]\d{6,14}$", _("Enter the number in E.164 form, e.g. +8613800138000."))


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(tz)s is not a known time zone (e.g. Asia/Shanghai)."), params={"tz": value})


class PagingMethod(models.TextChoices):
    """Ways to reach a person, tried in the order the person lists them."""

    DINGTALK_DING_PHONE = "dingtalk_ding_phone", _("DingTalk DING by phone")
    DINGTALK_DING_SMS = "dingtalk_ding_sms", _("DingTalk DING by SMS")
    DINGTALK_DING_APP = "dingtalk_ding_app", _("DingTalk DING in the app")
    ALIYUN_VOICE = "aliyun_voice", _("Alibaba Cloud voice call")
    ALIYUN_SMS = "aliyun_sms", _("Alibaba Cloud SMS")
    EMAIL = "email", _("Email")


def default_paging_methods() -> list[str]:
    return [PagingMethod.DINGTALK_DING_PHONE, PagingMethod.ALIYUN_VOICE, PagingMethod.ALIYUN_SMS, PagingMethod.DINGTALK_DING_APP]


def validate_paging_methods(value) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(_("Give the paging methods as a list, e.g. [\"aliyun_voice\", \"aliyun_sms\"]."))
    unknown = [v for v in value if v not in PagingMethod.values]
    if unknown:
        raise ValidationError(
            _("Unknown paging method(s): %(unknown)s. Choose from %(known)s."),
            params={"unknown": ", ".join(unknown), "known": ", ".join(PagingMethod.values)},
        )
    if len(set(value)) != len(value):
        raise ValidationError(_("List each paging method once."))


class Person(models.Model):
    """Someone the product may page: a responder, a leader, a stakeholder."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="person"
    )
    name = models.CharField(_("name"), max_length=100)
    phone = models.CharField(_("phone"), max_length=16, blank=True, validators=[e164])
    email = models.EmailField(_("email"), blank=True)
    dingtalk_user_id = models.CharField(_("DingTalk userId"), max_length=64, blank=True)
    dingtalk_union_id = models.CharField(_("DingTalk unionId"), max_length=64, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone])
    language = models.CharField(
        _("preferred language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    paging_methods = models.JSONField(
        _("paging methods"),
        default=default_paging_methods,
        validators=[validate_paging_methods],
        help_text=_("Tried in this order until the person checks in."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("person")
        verbose_name_plural = _("people")

    def __str__(self):
        return self.name


class Business(models.Model):
    """A business line whose exceptions can become faults."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    technical_leader = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("technical team leader")
    )
    stability_contact = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("stability contact")
    )
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependants", verbose_name=_("depends on")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("business")
        verbose_name_plural = _("businesses")

    def __str__(self):
        return self.name
