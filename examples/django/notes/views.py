"""A list of notes with a form (Django's CSRF protection), a JSON view and a probe."""

import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .models import Note

TENANT = os.environ.get("TENANT_NAME", "")


def index(request: HttpRequest) -> HttpResponse:
    notes = Note.objects.order_by("id")
    added = request.session.get("added", 0)
    return render(request, "notes/index.html",
                  {"tenant": TENANT, "notes": notes, "added": added})


@require_POST
def add(request: HttpRequest) -> HttpResponse:
    body = request.POST.get("body", "").strip()
    if body:
        Note.objects.create(body=body[:500])
        request.session["added"] = request.session.get("added", 0) + 1
    return redirect("index")


def api(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"tenant": TENANT, "notes": [n.body for n in Note.objects.order_by("id")]})


def up(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
