"""oslo.middleware's own Healthcheck, answering requests read from stdin.

One JSON object per line in: {"method", "accept" (or null), "disable_by_file_path"
(or null)}; one JSON object per line out: {"status", "content_type", "body"}.
The backends are CloudKitty's api_paste.ini's: disable_by_file alone.
"""
import json
import sys
import warnings

warnings.simplefilter('ignore')

from oslo_middleware import healthcheck  # noqa: E402
import webob  # noqa: E402

apps = {}
for line in sys.stdin:
    ask = json.loads(line)
    path = ask.get('disable_by_file_path')
    if path not in apps:
        conf = {'backends': 'disable_by_file'}
        if path is not None:
            conf['disable_by_file_path'] = path
        apps[path] = healthcheck.Healthcheck.app_factory({}, **conf)
    req = webob.Request.blank('/healthcheck', method=ask['method'])
    if ask.get('accept') is not None:
        req.headers['Accept'] = ask['accept']
    res = req.get_response(apps[path])
    print(json.dumps({'status': res.status_code, 'content_type': res.headers.get('Content-Type'), 'body': res.body.decode('utf-8')}), flush=True)
