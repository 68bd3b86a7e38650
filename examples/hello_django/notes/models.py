from django.db import models


class Note(models.Model):
    """A note, written in the admin (/admin/) and listed on the home page."""

    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ['-created_at', '-id']

    def __str__(self):
        return self.text if len(self.text) <= 60 else self.text[:57] + '...'


class Counter(models.Model):
    """A named counter: /visits counts its requests in the database."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self):
        return f'{self.name}: {self.value}'
