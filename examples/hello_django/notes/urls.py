from django.urls import path

from notes import views

urlpatterns = [
    path('', views.index, name='index'),
    path('notes/', views.notes, name='notes'),
    path('visits', views.visits, name='visits'),
    path('slow', views.slow, name='slow'),
]
