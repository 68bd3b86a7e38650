"""{% static %} through twelve's cache_manifest.json: "admin/css/base.css" becomes
"/static/admin/css/base-<md5>.css", the name `twelve digest` gave the file in STATIC_ROOT.

Collecting is Django's own (collectstatic copies into STATIC_ROOT unchanged); only the URL is
twelve's, so Django's ManifestStaticFilesStorage (which would hash a second time) is not used.
"""
from django.contrib.staticfiles.storage import StaticFilesStorage

from twelve.runtime import static


class DigestedStaticFilesStorage(StaticFilesStorage):
    def url(self, name):
        return static.static_path(name)
