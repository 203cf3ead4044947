"""The war-room pages. Views read through selectors and change things only through services.

Every action is a plain form post to /faults/<id>/act/<action>/: on success it redirects
back to the page (which the socket keeps live), on a refusal it shows the page again with
the service's sentence beside the form, with the service's status code.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from incidents import permissions, services
from incidents.errors import NotAllowed, ServiceError
from incidents.models import Fault, StatusUpdate
from notifications.response.group import card_check_in

from . import forms
from .selectors.collaboration import group_member_ids
from .selectors.fault_list import fault_rows
from .selectors.war_room import WarRoom, people_for_assignment, war_room

LOGIN_URL = "/login/"


def page_login_required(view):
    """Like login_required, but to this site's login page (the admin's takes only staff)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), LOGIN_URL)
        person = permissions.person_of(request.user)
        # Times on the page are in the reader's own zone; the browser refines them further.
        if person is not None and person.time_zone:
            timezone.activate(person.time_zone)
        try:
            return view(request, *args, **kwargs)
        finally:
            timezone.deactivate()

    return wrapped


def _visible_fault(request, fault_id: int) -> Fault:
    fault = Fault.objects.filter(pk=fault_id).first()
    if fault is None:
        raise Http404(_("There is no fault %(id)s.") % {"id": fault_id})
    if not permissions.can_view(request.user, fault):
        raise NotAllowed(_("You may not see this fault."))
    return fault


def _refused(request, exc: ServiceError):
    return render(request, "warroom/refused.html", {"message": exc.message}, status=exc.status_code)


# --- list and declare ---------------------------------------------------------------------


@page_login_required
@require_GET
def fault_list(request):
    return render(
        request,
        "warroom/fault_list.html",
        {"rows": fault_rows(request.user), "can_declare": permissions.can_declare(request.user)},
    )


@page_login_required
def fault_declare(request):
    if not permissions.can_declare(request.user):
        return _refused(request, NotAllowed(_("You may not declare faults.")))
    form = forms.DeclareForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                fault = services.fault_declare(actor=request.user, **form.cleaned_data)
            except NotAllowed as exc:
                return _refused(request, exc)
            except ServiceError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(request, _("Fault declared."))
                return redirect("warroom:fault", fault_id=fault.pk)
        else:
            status = 400
    return render(request, "warroom/fault_declare.html", {"form": form}, status=status)


# --- the war room -------------------------------------------------------------------------


def _action_forms(room: WarRoom) -> dict:
    fault = room.fault
    return {
        "assign": forms.AssignRoleForm(prefix="assign"),
        "task_create": forms.TaskCreateForm(prefix="task", fault=fault),
        "update": forms.StatusUpdateForm(prefix="update", may_post_progress=room.can_manage),
        "plan_propose": forms.PlanProposeForm(prefix="plan"),
        "level": forms.LevelForm(prefix="level", initial={"level": fault.level}),
        "suspect": forms.SuspectForm(prefix="suspect"),
    }


def _room_context(request, fault: Fault, bound: dict | None = None) -> dict:
    room = war_room(fault, request.user)
    page_forms = _action_forms(room)
    if bound:
        page_forms.update(bound)
    return {
        "room": room,
        "fault": room.fault,
        "forms": page_forms,
        "people": people_for_assignment() if room.can_manage else [],
        "task_statuses": forms.TaskUpdateForm.base_fields["status"].choices,
    }


@page_login_required
@require_GET
def fault_room(request, fault_id: int):
    try:
        fault = _visible_fault(request, fault_id)
    except NotAllowed as exc:
        return _refused(request, exc)
    return render(request, "warroom/fault_room.html", _room_context(request, fault))


# Panels as a stakeholder sees them are the same for every stakeholder reading the same
# seq in the same language and zone: a thousand watchers cost one render per event.
SHARED_PANELS_SECONDS = 15


def _shared_panels_key(request, fault: Fault) -> str | None:
    """The cache key of the panels a reader without a part in the fault sees, else None."""
    if permissions.can_manage(request.user, fault) or permissions.is_participant(request.user, fault):
        return None
    return ":".join(
        ["warroom:panels", str(fault.pk), fault.declared_at.isoformat(), str(fault.last_seq),
         translation.get_language(), timezone.get_current_timezone_name()]
    )


@page_login_required
@require_GET
def fault_room_panels(request, fault_id: int):
    """The page's panels alone, for the live page to swap in after an event."""
    try:
        fault = _visible_fault(request, fault_id)
    except NotAllowed as exc:
        return _refused(request, exc)
    key = _shared_panels_key(request, fault)
    if key is not None and (html := cache.get(key)) is not None:
        return HttpResponse(html)
    response = render(request, "warroom/_room_panels.html", _room_context(request, fault))
    # Never share a page that holds a form: its CSRF token is this reader's own.
    if key is not None and b"csrfmiddlewaretoken" not in response.content:
        cache.set(key, response.content, SHARED_PANELS_SECONDS)
    return response


def _form_for(action: str, request, fault: Fault, room_can_manage: bool):
    data = request.POST
    return {
        "assign": lambda: forms.AssignRoleForm(data, prefix="assign"),
        "check_in": lambda: forms.CheckInForm(data, prefix="checkin"),
        "task_create": lambda: forms.TaskCreateForm(data, prefix="task", fault=fault),
        "task_update": lambda: forms.TaskUpdateForm(data, prefix="taskupd", fault=fault),
        "plan_propose": lambda: forms.PlanProposeForm(data, prefix="plan"),
        "plan_decide": lambda: forms.PlanDecisionForm(data, prefix="decide", fault=fault),
        "update": lambda: forms.StatusUpdateForm(data, prefix="update", may_post_progress=room_can_manage),
        "level": lambda: forms.LevelForm(data, prefix="level"),
        "suspect": lambda: forms.SuspectForm(data, prefix="suspect"),
        "status": lambda: forms.FaultStatusForm(data, prefix="status"),
        "conference": lambda: forms.ConferenceForm(data, prefix="conference"),
        "card_check_in": lambda: forms.CardCheckInForm(data, prefix="card", fault=fault),
    }[action]()


def _perform(action: str, form, fault: Fault, user) -> str:
    """Call the service for one action; returns the sentence to flash on success."""
    d = form.cleaned_data
    if action == "assign":
        services.role_assign(fault=fault, person=d["person"], role=d["role"], actor=user)
        return _("%(person)s assigned.") % {"person": d["person"].name}
    if action == "check_in":
        person = d.get("person") or permissions.person_of(user)
        if person is None:
            raise NotAllowed(_("Your account is not linked to a person, so there is nobody to check in."))
        services.role_check_in(fault=fault, person=person, actor=user, via="web")
        return _("Checked in.")
    if action == "task_create":
        services.task_create(
            fault=fault, assignee=d["assignee"], kind=d["kind"], title=d["title"], due_at=form.due_at(), actor=user
        )
        return _("Task assigned.")
    if action == "task_update":
        services.task_update(task=d["task"], status=d["status"] or None, progress=d["progress"] or None, actor=user)
        return _("Task updated.")
    if action == "plan_propose":
        services.plan_propose(fault=fault, description=d["description"], expected_impact=d["expected_impact"], actor=user)
        return _("Plan proposed.")
    if action == "plan_decide":
        plan = d["plan"]
        if d["decision"] == "approve":
            services.plan_approve(plan=plan, actor=user)
            return _("Plan approved.")
        if d["decision"] == "reject":
            services.plan_reject(plan=plan, reason=d["reason"], actor=user)
            return _("Plan rejected.")
        services.plan_execute(plan=plan, actor=user)
        return _("Plan marked executed.")
    if action == "update":
        services.status_update_post(fault=fault, kind=d["kind"], body=d["body"], actor=user)
        return _("Progress update posted.") if d["kind"] == StatusUpdate.Kind.PROGRESS else _("Note added.")
    if action == "level":
        services.fault_change_level(fault=fault, level=d["level"], reason=d["reason"], actor=user)
        return _("Level changed.")
    if action == "suspect":
        services.fault_suspect_add(fault=fault, business=d["business"], actor=user)
        return _("%(business)s added as a suspected cause; its emergency contacts are being paged.") % {
            "business": d["business"].name
        }
    if action == "status":
        change = {
            "mitigated": services.fault_mark_mitigated,
            "recovered": services.fault_mark_recovered,
            "closed": services.fault_close,
            "reopen": services.fault_reopen,
        }[d["to"]]
        change(fault=fault, actor=user)
        return _("Status changed.")
    if action == "conference":
        services.conference_request(fault=fault, actor=user)
        return _("Starting the conference call…")
    if action == "card_check_in":
        person = permissions.person_of(user)
        if person is None or not person.dingtalk_user_id or person.pk not in group_member_ids(fault):
            raise NotAllowed(_("Only members of the collaboration group can use its card."))
        # The same path as a click on the card in DingTalk, once its signature is checked.
        card_check_in(out_track_id=d["card"].provider_key, user_id=person.dingtalk_user_id)
        return _("Checked in from the card.")
    raise Http404


ROW_ACTIONS = {"check_in", "task_update", "plan_decide", "status", "conference", "card_check_in"}
ACTIONS = {
    "assign",
    "check_in",
    "task_create",
    "task_update",
    "plan_propose",
    "plan_decide",
    "update",
    "level",
    "suspect",
    "status",
    "conference",
    "card_check_in",
}


@page_login_required
def fault_act(request, fault_id: int, action: str):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if action not in ACTIONS:
        raise Http404(_("There is no such action."))
    try:
        fault = _visible_fault(request, fault_id)
        # Every action needs a role in the fault or the manage permission; stakeholders only read.
        # The services check again, in detail.
        if not permissions.is_participant(request.user, fault):
            raise NotAllowed(_("Only people with a role in this fault may act on it."))
    except NotAllowed as exc:
        return _refused(request, exc)

    form = _form_for(action, request, fault, permissions.can_manage(request.user, fault))
    status = 400
    if form.is_valid():
        try:
            done = _perform(action, form, fault, request.user)
        except NotAllowed as exc:
            return _refused(request, exc)
        except ServiceError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, done)
            return redirect(reverse("warroom:fault", args=[fault.pk]) + "#" + _anchor(action))
    context = _room_context(request, fault, bound={action: form})
    # Forms that live in a list row (one per task, plan, person) show their refusal at the top.
    if action in ROW_ACTIONS:
        context["failed_row_form"] = form
    return render(request, "warroom/fault_room.html", context, status=status)


def _anchor(action: str) -> str:
    return {
        "assign": "roles",
        "check_in": "roles",
        "task_create": "tasks",
        "task_update": "tasks",
        "plan_propose": "plans",
        "plan_decide": "plans",
        "update": "updates",
        "card_check_in": "sandbox",
    }.get(action, "top")
