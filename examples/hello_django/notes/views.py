"""The home page (the notes, with the app's digested stylesheet), a JSON list of the notes, a
visit counter in the database and a slow page that shows graceful draining."""
import time

from django.db import transaction
from django.db.models import F
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from notes.models import Counter, Note

LATEST = 20


@require_GET
def index(request):
    return render(request, 'notes/index.html', {'notes': Note.objects.all()[:LATEST]})


@require_GET
def notes(request):
    return JsonResponse({'notes': [
        {'id': note.id, 'text': note.text, 'created_at': note.created_at.isoformat()}
        for note in Note.objects.all()[:LATEST]]})


@require_GET
def visits(request):
    with transaction.atomic():
        Counter.objects.get_or_create(name='visits')
        Counter.objects.filter(name='visits').update(value=F('value') + 1)
        count = Counter.objects.get(name='visits').value
    return JsonResponse({'visits': count})


@require_GET
def slow(request):
    # A stop or restart lets this finish (at most 5 s).
    try:
        seconds = min(max(float(request.GET.get('seconds', 1)), 0.0), 5.0)
    except ValueError:
        return JsonResponse({'error': 'seconds must be a number'}, status=400)
    time.sleep(seconds)
    return JsonResponse({'slept': seconds})
