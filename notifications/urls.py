from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("dingtalk/card-callback/", views.dingtalk_card_callback, name="dingtalk-card-callback"),
    path("receipts/<str:secret>/aliyun/sms/", views.aliyun_sms_report, name="aliyun-sms-report"),
    path("receipts/<str:secret>/aliyun/voice/", views.aliyun_voice_report, name="aliyun-voice-report"),
]
