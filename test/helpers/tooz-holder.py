"""A real tooz client, driven line by line over stdin/stdout by tooz-holder.ts.

    tooz-holder.py URL        take locks on the tooz backend at URL, as
                              CloudKitty's processor does: get_coordinator,
                              start(start_heart=True), get_lock(name as ascii
                              bytes), acquire(blocking=False)
    tooz-holder.py names COLLECTOR FETCHER SCOPE_KEY SCOPE_ID...
                              print, one a line, the lock name CloudKitty's own
                              cloudkitty.orchestrator.get_lock computes for
                              each scope id under that configuration
    tooz-holder.py split URL...
                              print, one JSON line each, how get_coordinator
                              splits each URL (oslo_utils.netutils.urlsplit,
                              parse_qs, utils.collapse); an error as
                              {"error": "..."}

Commands (one a line), each answered by one JSON line
{"ok": true, "result": ...} or {"ok": false, "error": "..."}:

    hold NAME      acquire(blocking=False) and keep the lock; result: bool
    release NAME   release a held lock; result: bool
    try NAME       acquire(blocking=False) on a fresh lock object, release it
                   when taken; result: bool
    quit
"""
import json
import sys
import uuid


def lock_names(collector, fetcher, scope_key, scope_ids):
    from cloudkitty import orchestrator
    from oslo_config import cfg

    conf = cfg.CONF
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('collector', collector, 'collect')
    conf.set_override('scope_key', scope_key, 'collect')
    conf.set_override('backend', fetcher, 'fetcher')

    class NameEcho(object):
        """A coordinator whose get_lock hands back the name it is given."""

        def get_lock(self, name):
            return name

    for scope_id in scope_ids:
        name, echoed = orchestrator.get_lock(NameEcho(), scope_id)
        assert echoed == name.encode('ascii')
        print(name)


def split(urls):
    import urllib.parse

    from oslo_utils import netutils
    from tooz import utils

    for url in urls:
        try:
            parsed = netutils.urlsplit(url)
            reply = {
                'scheme': parsed.scheme,
                'netloc': parsed.netloc,
                'path': parsed.path,
                'hostname': parsed.hostname,
                'port': parsed.port,
                'username': parsed.username,
                'password': parsed.password,
                'options': utils.collapse(
                    urllib.parse.parse_qs(parsed.query)),
            }
        except ValueError as error:
            reply = {'error': str(error)}
        print(json.dumps(reply))


def serve(url):
    from tooz import coordination

    coord = coordination.get_coordinator(
        url, ('tooz-holder-%s' % uuid.uuid4()).encode('ascii'))
    coord.start(start_heart=True)
    held = {}

    def answer(**reply):
        sys.stdout.write(json.dumps(reply) + '\n')
        sys.stdout.flush()

    answer(ok=True, result='ready')
    try:
        for line in sys.stdin:
            verb, _, name = line.strip().partition(' ')
            try:
                if verb == 'quit':
                    answer(ok=True, result=True)
                    break
                if verb == 'hold':
                    lock = coord.get_lock(name.encode('ascii'))
                    taken = lock.acquire(blocking=False)
                    if taken:
                        held[name] = lock
                    answer(ok=True, result=bool(taken))
                elif verb == 'release':
                    lock = held.pop(name)
                    answer(ok=True, result=bool(lock.release()))
                elif verb == 'try':
                    lock = coord.get_lock(name.encode('ascii'))
                    taken = lock.acquire(blocking=False)
                    if taken:
                        lock.release()
                    answer(ok=True, result=bool(taken))
                else:
                    answer(ok=False, error='unknown command %r' % verb)
            except Exception as error:  # reported to the test, which fails
                answer(ok=False, error='%s: %s' % (type(error).__name__, error))
    finally:
        for lock in held.values():
            lock.release()
        coord.stop()


if __name__ == '__main__':
    if sys.argv[1] == 'split':
        split(sys.argv[2:])
    elif sys.argv[1] == 'names':
        lock_names(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        serve(sys.argv[1])
