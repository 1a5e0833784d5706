"""Serving an exported generator: the request/response contract and the service that fulfils it
(contract.py), batching concurrent requests onto one inference thread (batching.py), HTTP on waitress
(http.py) with a page to try the model in a browser (page.py), and the MXNet Model Server handler
(mms_handler.py) - the same contract everywhere."""
