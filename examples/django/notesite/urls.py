"""URLs relative to the tenant's prefix: gunicorn strips SCRIPT_NAME before Django routes,
and reverse() / {% url %} put it back."""

from django.urls import path
from notes import views

urlpatterns = [
    path("", views.index, name="index"),
    path("notes", views.add, name="add"),
    path("api/notes", views.api, name="api"),
    path("up", views.up, name="up"),
]
