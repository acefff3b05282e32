"""A hand-driven peer of Hyperware's network protocol, for black-box tests
that need to misbehave where a real node never would: it dials a node over
TCP, runs the Noise XX handshake as initiator (Noise_XX_25519_ChaChaPoly_
BLAKE2s, on python3-cryptography's primitives), signs its payload with its
own Ed25519 key, then sends whatever frames a test asks for.  Only the test
harness speaks Noise by hand; the node's implementation is its own."""
import hashlib
import hmac
import socket
import struct

import msgpack
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

PROTOCOL = b"Noise_XX_25519_ChaChaPoly_BLAKE2s"
RAW = dict(encoding=serialization.Encoding.Raw,
           format=serialization.PublicFormat.Raw)


def _hash(d):
    return hashlib.blake2s(d).digest()


def _hmac(k, d):
    return hmac.new(k, d, hashlib.blake2s).digest()


def _hkdf(ck, ikm):
    t = _hmac(ck, ikm)
    o1 = _hmac(t, b"\x01")
    return o1, _hmac(t, o1 + b"\x02")


class Cipher:
    def __init__(self, key=None):
        self.key, self.n = key, 0

    def _nonce(self):
        return b"\0" * 4 + struct.pack("<Q", self.n)

    def encrypt(self, ad, pt):
        if self.key is None:
            return pt
        ct = ChaCha20Poly1305(self.key).encrypt(self._nonce(), pt, ad)
        self.n += 1
        return ct

    def decrypt(self, ad, ct):
        if self.key is None:
            return ct
        pt = ChaCha20Poly1305(self.key).decrypt(self._nonce(), ct, ad)
        self.n += 1
        return pt


def pub_bytes(key):
    return key.public_key().public_bytes(**RAW)


class Peer:
    """`name` with a fresh Ed25519 networking key (`public_key_hex()` is
    what the node's peers file must say for it)."""

    def __init__(self, name):
        self.name = name
        self.key = Ed25519PrivateKey.generate()
        self.sock = None

    def public_key_hex(self):
        return pub_bytes(self.key).hex()

    def entry(self, port=1):
        return {"name": self.name, "public_key": self.public_key_hex(),
                "ips": ["127.0.0.1"], "ports": {"tcp": port}, "routers": []}

    # ---------------------------------------------------------- transport

    def connect(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        return self

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def send_raw(self, data):
        self.sock.sendall(data)

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the node closed the connection")
            buf += chunk
        return buf

    def send16(self, data):
        self.send_raw(struct.pack(">H", len(data)) + data)

    def recv16(self):
        (n,) = struct.unpack(">H", self._recv(2))
        return self._recv(n)

    def closed_by_node(self, timeout=10):
        """Whether the node closes the connection within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True  # closed with our bytes unread: a reset
        except (ConnectionError, socket.timeout):
            return False

    # ---------------------------------------------------------- handshake

    def _mix_hash(self, d):
        self.h = _hash(self.h + d)

    def _mix_key(self, ikm):
        self.ck, k = _hkdf(self.ck, ikm)
        self.c = Cipher(k)

    def _enc_hash(self, pt):
        ct = self.c.encrypt(self.h, pt)
        self._mix_hash(ct)
        return ct

    def _dec_hash(self, ct):
        h = self.h
        self._mix_hash(ct)
        return self.c.decrypt(h, ct)

    def _start(self):
        """A fresh handshake state (empty prologue) and this side's static
        and ephemeral keys."""
        self.h = _hash(PROTOCOL)
        self.ck = self.h
        self.c = Cipher()
        self._mix_hash(b"")  # empty prologue
        return X25519PrivateKey.generate(), X25519PrivateKey.generate()

    def handshake(self, sign_with=None, name=None, version=1):
        """Noise XX as initiator.  The payload names `name` (our own by
        default), is signed by `sign_with` (our key by default) and says
        protocol version `version` (1, Hyperware's, by default)."""
        s, e = self._start()
        # -> e
        self._mix_hash(pub_bytes(e))
        self.send16(pub_bytes(e) + self._enc_hash(b""))
        # <- e, ee, s, es
        m = self.recv16()
        re = X25519PublicKey.from_public_bytes(m[:32])
        self._mix_hash(m[:32])
        self._mix_key(e.exchange(re))
        rs = X25519PublicKey.from_public_bytes(self._dec_hash(m[32:80]))
        self._mix_key(e.exchange(rs))
        payload = msgpack.unpackb(self._dec_hash(m[80:]))
        self.their_name = payload[1]
        # -> s, se
        sig = (sign_with or self.key).sign(pub_bytes(s))
        mine = msgpack.packb([version, name or self.name, list(sig), False])
        out = self._enc_hash(pub_bytes(s))
        self._mix_key(s.exchange(re))
        out += self._enc_hash(mine)
        self.send16(out)
        k1, k2 = _hkdf(self.ck, b"")
        self.tx, self.rx = Cipher(k1), Cipher(k2)
        return self

    def respond(self, sock):
        """Noise XX as responder on `sock`, a connection the node dialed:
        returns the length of its first message, its payload (decoded) and
        the static key it proved (the key its payload's signature must
        cover)."""
        self.sock = sock
        s, e = self._start()
        # -> e
        m = self.recv16()
        first = len(m)
        re = X25519PublicKey.from_public_bytes(m[:32])
        self._mix_hash(m[:32])
        self._dec_hash(m[32:])
        # <- e, ee, s, es
        out = pub_bytes(e)
        self._mix_hash(out)
        self._mix_key(e.exchange(re))
        out += self._enc_hash(pub_bytes(s))
        self._mix_key(s.exchange(re))
        sig = self.key.sign(pub_bytes(s))
        out += self._enc_hash(msgpack.packb([1, self.name, list(sig), False]))
        self.send16(out)
        # -> s, se
        m = self.recv16()
        rs = self._dec_hash(m[:48])
        self._mix_key(e.exchange(X25519PublicKey.from_public_bytes(rs)))
        payload = msgpack.unpackb(self._dec_hash(m[48:]))
        k1, k2 = _hkdf(self.ck, b"")
        self.tx, self.rx = Cipher(k2), Cipher(k1)
        return first, payload, rs

    # ---------------------------------------------------------- messages

    def frame(self, plaintext):
        """A transport message: u32 length, then encrypted chunks."""
        out = struct.pack(">I", len(plaintext))
        for i in range(0, len(plaintext), 65519):
            ct = self.tx.encrypt(b"", plaintext[i:i + 65519])
            out += struct.pack(">H", len(ct)) + ct
        return out

    def send_message(self, plaintext):
        self.send_raw(self.frame(plaintext))

    @staticmethod
    def kernel_message(source, target, body, rsvp=None, expects=5, id=1):
        return msgpack.packb([id, source, target, rsvp,
                              {"Request": [False, expects, list(body), None,
                                           []]}, None])

    def recv_message(self):
        (n,) = struct.unpack(">I", self._recv(4))
        data = b""
        while len(data) < n:
            data += self.rx.decrypt(b"", self.recv16())
        return msgpack.unpackb(data)


class WsPeer(Peer):
    """The same peer over a WebSocket link (python3-wsproto's framing):
    each handshake message and each encrypted chunk of (u32 length ‖
    message) is one binary WebSocket message."""

    def entry(self, port=1):
        return {"name": self.name, "public_key": self.public_key_hex(),
                "ips": ["127.0.0.1"], "ports": {"ws": port}, "routers": []}

    def connect(self, port, timeout=10):
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request
        super().connect(port, timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending = []
        self.send_raw(self.ws.send(Request(host="127.0.0.1:%d" % port,
                                           target="/")))
        while True:
            ev = self._event()
            if isinstance(ev, AcceptConnection):
                return self
            raise ConnectionError("upgrade refused: %r" % ev)

    def accept(self, sock):
        """The server's side of the upgrade, on a connection the node
        dialed (python3-wsproto as the server: its frames unmasked)."""
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request
        self.sock = sock
        self.ws = WSConnection(ConnectionType.SERVER)
        self.pending = []
        ev = self._event()
        if not isinstance(ev, Request):
            raise ConnectionError("not an upgrade: %r" % ev)
        self.request = ev
        self.send_raw(self.ws.send(AcceptConnection()))
        return self

    def _event(self):
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the node closed the connection")
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    def send16(self, data):
        from wsproto.events import BytesMessage
        self.send_raw(self.ws.send(BytesMessage(data=data)))

    def recv16(self):
        from wsproto.events import BytesMessage, Ping
        buf = b""
        while True:
            ev = self._event()
            if isinstance(ev, Ping):
                self.send_raw(self.ws.send(ev.response()))
                continue
            if not isinstance(ev, BytesMessage):
                raise ConnectionError("not a binary message: %r" % ev)
            buf += ev.data
            if ev.message_finished:
                return buf

    def frames(self, plaintext):
        """The binary messages of a transport message."""
        stream = struct.pack(">I", len(plaintext)) + plaintext
        return [self.tx.encrypt(b"", stream[i:i + 65519])
                for i in range(0, len(stream), 65519)]

    def send_message(self, plaintext):
        for f in self.frames(plaintext):
            self.send16(f)

    def recv_message(self):
        data = self.rx.decrypt(b"", self.recv16())
        (n,) = struct.unpack(">I", data[:4])
        data = data[4:]
        while len(data) < n:
            data += self.rx.decrypt(b"", self.recv16())
        return msgpack.unpackb(data)
