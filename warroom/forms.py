"""Forms of the war-room page. They check the shape of the input; the services decide the rest."""

from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from incidents.models import Fault, Level, MitigationPlan, RoleAssignment, StatusUpdate, Task
from notifications.models import Channel, Delivery
from roster.models import Business, Person
from django.utils import timezone

LEVEL_CHOICES = [(v, label) for v, label in Level.choices]


class DeclareForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    level = forms.TypedChoiceField(label=_("Level"), choices=LEVEL_CHOICES, coerce=int, initial=Level.P2)
    impact = forms.CharField(label=_("Impact"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    affected_business = forms.ModelChoiceField(label=_("Affected business"), queryset=Business.objects.order_by("name"))
    suspected_cause_businesses = forms.ModelMultipleChoiceField(
        label=_("Suspected-cause businesses"), queryset=Business.objects.order_by("name"), required=False
    )
    detected_at = forms.DateTimeField(
        label=_("Detected at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Leave empty for now."),
    )
    commander = forms.ModelChoiceField(label=_("Commander"), queryset=Person.objects.order_by("name"), required=False)
    fault_handler = forms.ModelChoiceField(
        label=_("Fault handler"), queryset=Person.objects.order_by("name"), required=False
    )


class AssignRoleForm(forms.Form):
    person = forms.ModelChoiceField(label=_("Person"), queryset=Person.objects.order_by("name"))
    role = forms.ChoiceField(label=_("Role"), choices=RoleAssignment.Role.choices, initial=RoleAssignment.Role.EMERGENCY_HANDLER)


class CheckInForm(forms.Form):
    person = forms.ModelChoiceField(label=_("Person"), queryset=Person.objects.all(), required=False)


class TaskCreateForm(forms.Form):
    assignee = forms.ModelChoiceField(label=_("Assignee"), queryset=Person.objects.none())
    kind = forms.ChoiceField(label=_("Kind"), choices=Task.Kind.choices)
    title = forms.CharField(label=_("Title"), max_length=200)
    due_in_minutes = forms.IntegerField(
        label=_("Due in (minutes)"),
        min_value=1,
        max_value=7 * 24 * 60,
        required=False,
        help_text=_("Leave empty for the level's SLA."),
    )

    def __init__(self, *args, fault: Fault, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = Person.objects.filter(
            fault_roles__fault=fault, fault_roles__ended_at__isnull=True
        ).distinct().order_by("name")

    def due_at(self):
        minutes = self.cleaned_data.get("due_in_minutes")
        return timezone.now() + timedelta(minutes=minutes) if minutes else None


class TaskUpdateForm(forms.Form):
    task = forms.ModelChoiceField(queryset=Task.objects.none(), widget=forms.HiddenInput)
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("(unchanged)"))] + Task.Status.choices, required=False)
    progress = forms.CharField(label=_("Progress"), widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args, fault: Fault, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task"].queryset = Task.objects.filter(fault=fault)

    def clean(self):
        data = super().clean()
        if not data.get("status") and not (data.get("progress") or "").strip():
            raise forms.ValidationError(_("Give a new status or some progress."))
        return data


class PlanProposeForm(forms.Form):
    description = forms.CharField(label=_("Plan"), widget=forms.Textarea(attrs={"rows": 3}))
    expected_impact = forms.TypedChoiceField(
        label=_("Expected impact"),
        choices=LEVEL_CHOICES,
        coerce=int,
        help_text=_("On the fault's own scale: P1 is the most severe."),
    )


class PlanDecisionForm(forms.Form):
    DECISIONS = [("approve", _("Approve")), ("reject", _("Reject")), ("execute", _("Mark executed"))]
    plan = forms.ModelChoiceField(queryset=MitigationPlan.objects.none(), widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=DECISIONS)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)

    def __init__(self, *args, fault: Fault, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = MitigationPlan.objects.filter(fault=fault)


class StatusUpdateForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=StatusUpdate.Kind.choices)
    body = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, may_post_progress: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not may_post_progress:
            self.fields["kind"].choices = [(StatusUpdate.Kind.NOTE, StatusUpdate.Kind.NOTE.label)]
            self.fields["kind"].initial = StatusUpdate.Kind.NOTE


class LevelForm(forms.Form):
    level = forms.TypedChoiceField(label=_("New level"), choices=LEVEL_CHOICES, coerce=int)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)


class SuspectForm(forms.Form):
    business = forms.ModelChoiceField(label=_("Business"), queryset=Business.objects.all())


class FaultStatusForm(forms.Form):
    TRANSITIONS = [
        ("mitigated", _("Mark mitigated")),
        ("recovered", _("Mark recovered")),
        ("closed", _("Close")),
        ("reopen", _("Reopen")),
    ]
    to = forms.ChoiceField(choices=TRANSITIONS)


class ConferenceForm(forms.Form):
    """Starting the conference needs no input: who joins is whoever has checked in."""


class CardCheckInForm(forms.Form):
    """A click on the check-in card that the sandbox shows in place of the DingTalk group."""

    card = forms.ModelChoiceField(queryset=Delivery.objects.none(), widget=forms.HiddenInput)

    def __init__(self, *args, fault: Fault, **kwargs):
        super().__init__(*args, **kwargs)
        # Only a card that went through the sandbox: a real one is clicked in DingTalk.
        self.fields["card"].queryset = Delivery.objects.filter(
            fault=fault, channel=Channel.DINGTALK_CARD, transport="sandbox"
        )
