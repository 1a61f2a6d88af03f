from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, VoiceResponse

validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)


def _valid(request):
    return validator.validate(
        request.build_absolute_uri(),
        request.POST,
        request.headers.get("X-Twilio-Signature", ""),
    )


def _base(request):
    return f"{request.scheme}://{request.get_host()}"


@csrf_exempt
def dial_customer(request):
    if not _valid(request):
        return HttpResponseForbidden()
    base = _base(request)
    response = VoiceResponse()
    dial = Dial(
        action=f"{base}/twiml/agent-dial-ended",
        method="POST",
        caller_id=request.GET["callerId"],
        answer_on_bridge=True,
    )
    dial.number(
        request.GET["to"],
        status_callback=f"{base}/events/customer-leg",
        status_callback_event="initiated ringing answered completed",
        status_callback_method="POST",
    )
    response.append(dial)
    return HttpResponse(str(response), content_type="text/xml")


@csrf_exempt
def conference(request):
    if not _valid(request):
        return HttpResponseForbidden()
    base = _base(request)
    response = VoiceResponse()
    dial = Dial()
    dial.conference(
        request.GET["room"],
        beep=False,
        end_conference_on_exit=True,
        participant_label="customer",
        start_conference_on_enter=True,
        status_callback=f"{base}/events/conference",
        status_callback_event="start end join leave",
        status_callback_method="POST",
    )
    response.append(dial)
    return HttpResponse(str(response), content_type="text/xml")
