"""oslo.middleware's HTTPProxyToWSGI, reading requests from stdin.

One JSON object per line in: {"enabled": bool, "headers": {name: value}};
one JSON object per line out: the WSGI environ values it rewrites for a
request to http://backend:8889/ from 127.0.0.1: {"scheme", "host",
"script_name", "remote_addr"}.
"""
import json
import sys
import warnings

warnings.simplefilter('ignore')

from oslo_middleware import http_proxy_to_wsgi  # noqa: E402
import webob  # noqa: E402


def seen(environ, start_response):
    body = json.dumps({
        'scheme': environ['wsgi.url_scheme'],
        'host': environ.get('HTTP_HOST'),
        'script_name': environ.get('SCRIPT_NAME', ''),
        'remote_addr': environ.get('REMOTE_ADDR'),
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]


middlewares = {
    enabled: http_proxy_to_wsgi.HTTPProxyToWSGI(seen, {'enable_proxy_headers_parsing': enabled})
    for enabled in (True, False)
}
for line in sys.stdin:
    ask = json.loads(line)
    req = webob.Request.blank('/', environ={'REMOTE_ADDR': '127.0.0.1', 'HTTP_HOST': 'backend:8889'})
    for name, value in ask['headers'].items():
        req.headers[name] = value
    res = req.get_response(middlewares[ask['enabled']])
    print(res.body.decode(), flush=True)
