# The seed's webhooks as the original article writes them: Django views with
# twilio-python's VoiceResponse and RequestValidator. Benchmark only.
import os

SECRET_KEY = "benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "seed.urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
WSGI_APPLICATION = "seed.wsgi.application"
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "bench-auth-token")
