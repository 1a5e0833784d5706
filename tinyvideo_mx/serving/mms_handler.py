"""MXNet Model Server (multi-model-server 1.1.x) handler: the contract of contract.py, unchanged.

``tinyvideo-mx export --mar`` packs this file with the exported generator; MMS calls
``handle(data, context)`` with a batch of requests whose body is the JSON request.
"""
import json
import os

_service = None


def _body(row):
    body = row.get("body") if row.get("body") is not None else row.get("data")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body if body is not None else {}).encode()


def handle(data, context):
    global _service
    if _service is None:
        from tinyvideo_mx.serving.contract import SamplingService
        model_dir = context.system_properties.get("model_dir")
        max_n = int(os.environ.get("TINYVIDEO_MX_MAX_N", "16"))
        _service = SamplingService(os.path.join(model_dir, "generator"), max_n=max_n)
    if data is None:          # the warm-up call MMS makes when it loads the model
        return None
    responses = []
    for index, row in enumerate(data):
        status, content_type, payload = _service.respond(_body(row))
        context.set_response_content_type(index, content_type)
        if status != 200:
            context.set_response_status(status, json.loads(payload)["error"], index)
        responses.append(payload)
    return responses
