import sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = bytearray(open(src,'rb').read())
assert d[375144:375148] == bytes([0x41,0xc0,0x84,0x3d])
enc = bytes([0x80 | (n & 0x7f), 0x80 | ((n >> 7) & 0x7f), (n >> 14) & 0x7f])
d[375145:375148] = enc
open(dst,'wb').write(d)
