from django.urls import path

from . import views

urlpatterns = [
    path("twiml/dial-customer", views.dial_customer),
    path("twiml/conference", views.conference),
]
