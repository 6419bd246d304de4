#!/usr/bin/env python3
"""Recording reverse proxy for real OpenStack clients (docs/fidelity.md, "Real clients").

Listens on 127.0.0.1 and forwards to one Keystone. Every URL of the upstream services found
in an answer (the token's catalog, version documents, links, Location) is rewritten to point
back at the proxy, so a client (openstack CLI, OCCM) that was given the proxy's Keystone URL
sends every later request through it as well. Each exchange is appended as one JSON line to
the recording: the scenario step it belongs to, service, method, path template, query
parameter names, status, media type and the JSON body. The recording is a temporary file:
`fidelity-clients` reduces it to shapes (no values) before anything is kept.

    proxy.py --keystone http://127.0.0.1:5000 --record FILE --ready FILE [--prefix fid-xxxx]

The proxy's base URL is written to the --ready file once it listens. The current step is set
with `POST /__fid/step?name=NAME` (the runner does this before each client command);
`GET /__fid/idle` answers the seconds since the last proxied request ended and how many
requests were proxied so far.
"""
import argparse
import http.client
import http.server
import json
import re
import sys
import threading
import time
import urllib.parse

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
# Headers that describe one hop, not the message.
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate", "content-length", "accept-encoding", "host"}


class Routes:
    """Upstream origins (scheme://host:port) and the proxy prefix that stands for each."""

    def __init__(self, base, keystone):
        self.base = base
        self.lock = threading.Lock()
        self.origins = {}          # origin -> prefix ("/o0")
        self.services = []         # (origin, path prefix, service type), longest path first
        self.add_origin(keystone)
        self.add_service(keystone, "identity")

    @staticmethod
    def origin_of(url):
        u = urllib.parse.urlsplit(url)
        return f"{u.scheme}://{u.netloc}"

    def add_origin(self, url):
        origin = self.origin_of(url)
        with self.lock:
            if origin not in self.origins:
                self.origins[origin] = f"/o{len(self.origins)}"
            return self.origins[origin]

    def add_service(self, url, kind):
        origin = self.origin_of(url)
        path = urllib.parse.urlsplit(url).path.rstrip("/")
        # The version suffix of an endpoint (/v3, /v2.0) is not part of where a service lives:
        # its version document sits at the root.
        path = re.sub(r"/v[0-9.]+$", "", path)
        with self.lock:
            if (origin, path, kind) not in self.services:
                self.services.append((origin, path, kind))
                self.services.sort(key=lambda s: -len(s[1]))

    def learn_catalog(self, body):
        catalog = None
        if isinstance(body, dict):
            catalog = (body.get("token") or {}).get("catalog") or body.get("catalog")
        for entry in catalog or []:
            for ep in entry.get("endpoints") or []:
                url = ep.get("url")
                if isinstance(url, str) and url.startswith("http"):
                    self.add_origin(url)
                    self.add_service(url, entry.get("type", "?"))

    def upstream(self, path):
        """(origin, upstream path) for a request path of the proxy."""
        with self.lock:
            for origin, prefix in self.origins.items():
                if path == prefix or path.startswith(prefix + "/"):
                    return origin, path[len(prefix):] or "/"
        return None, None

    def service(self, origin, path):
        with self.lock:
            for o, p, kind in self.services:
                if o == origin and (path == p or path.startswith(p + "/") or p == ""):
                    return kind
        return "?"

    def rewrite(self, text):
        with self.lock:
            pairs = sorted(self.origins.items(), key=lambda kv: -len(kv[0]))
        for origin, prefix in pairs:
            text = text.replace(origin, self.base + prefix)
            text = text.replace(origin.replace("/", "\\/"), (self.base + prefix).replace("/", "\\/"))
        return text


def template(path, prefix):
    segs = []
    for s in path.split("/"):
        if UUID_RE.match(s):
            segs.append("{id}")
        elif prefix and prefix in urllib.parse.unquote(s):
            segs.append("{name}")
        else:
            segs.append(s)
    return "/".join(segs)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the recording is the log
        pass

    def handle_any(self):
        srv = self.server
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if url.path == "/__fid/step":
            srv.step = urllib.parse.parse_qs(url.query).get("name", ["?"])[0]
            return self.reply(204, {}, b"")
        if url.path == "/__fid/idle":
            # Seconds since the last client request ended: a background client (OCCM) is done
            # with a step when it has been quiet for a while.
            idle = time.monotonic() - srv.last if srv.active == 0 else 0.0
            return self.reply(200, {"Content-Type": "text/plain"}, f"{idle:.3f} {srv.count}\n".encode())
        with srv.rec_lock:
            srv.active += 1
        try:
            self.forward(srv, url, data)
        finally:
            with srv.rec_lock:
                srv.active -= 1
                srv.count += 1
                srv.last = time.monotonic()

    def forward(self, srv, url, data):
        origin, up_path = srv.routes.upstream(url.path)
        if origin is None:
            return self.reply(502, {"Content-Type": "text/plain"}, b"no upstream for this path\n")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        u = urllib.parse.urlsplit(origin)
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(u.netloc, timeout=120)
        target = up_path + (("?" + url.query) if url.query else "")
        try:
            conn.request(self.command, target, body=data or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            status, rheaders = resp.status, resp.getheaders()
        except OSError as e:
            return self.reply(502, {"Content-Type": "text/plain"}, f"upstream: {e}\n".encode())
        finally:
            conn.close()
        ctype = dict((k.lower(), v) for k, v in rheaders).get("content-type", "")
        parsed = None
        if body and "json" in ctype:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        if parsed is not None:
            srv.routes.learn_catalog(parsed)
            body = srv.routes.rewrite(body.decode("utf-8")).encode("utf-8")
        out = {}
        for k, v in rheaders:
            if k.lower() in HOP:
                continue
            if k.lower() == "location":
                v = srv.routes.rewrite(v)
            out[k] = v
        query = sorted({k for k, _ in urllib.parse.parse_qsl(url.query, keep_blank_values=True)})
        rec = {
            "step": srv.step,
            "service": srv.routes.service(origin, up_path),
            "method": self.command,
            "path": template(up_path, srv.prefix),
            "query": query,
            "status": status,
            "content_type": ctype.split(";")[0].strip() or None,
            "body": parsed,
            "empty": not body,
        }
        with srv.rec_lock:
            srv.record.write(json.dumps(rec, sort_keys=True) + "\n")
            srv.record.flush()
        self.reply(status, out, body)

    def reply(self, status, headers, body):
        self.send_response_only(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if status not in (204, 304) and not (100 <= status < 200):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keystone", required=True, help="upstream Keystone base URL (no /v3)")
    ap.add_argument("--record", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--prefix", default="", help="names containing this become {name} in paths")
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    srv.routes = Routes(base, a.keystone.rstrip("/"))
    srv.prefix = a.prefix
    srv.step = "start"
    srv.rec_lock = threading.Lock()
    srv.active = 0
    srv.count = 0
    srv.last = time.monotonic()
    srv.record = open(a.record, "a", encoding="utf-8")
    with open(a.ready + ".tmp", "w") as f:
        f.write(base + srv.routes.origins[Routes.origin_of(a.keystone)] + "\n")
    import os
    os.replace(a.ready + ".tmp", a.ready)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
