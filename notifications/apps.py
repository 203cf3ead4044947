from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from incidents import events

        from .models import Channel
        from .outbox.attempts import settle_with
        from .response import conference, group, reactions

        # Inside the service's transaction: the outbox rows, the group, engagements and
        # deadlines commit (or roll back) with the event. It writes no event of its own.
        events.subscribe(reactions.on_timeline_event, in_transaction=True)
        # Calls that are not messages: the response records what came of them.
        settle_with(Channel.DINGTALK_GROUP_CREATE, group.GROUP_CREATED)
        settle_with(Channel.DINGTALK_GROUP_MEMBER_ADD, group.MEMBER_ADDED)
        settle_with(Channel.DINGTALK_CONFERENCE, conference.CONFERENCE_STARTED)
