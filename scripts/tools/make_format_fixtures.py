"""Writes the real BMP/GIF/TIFF fixtures of test/formats.test.ts with Pillow (an independent encoder), next to
PNG references holding the same pixels: test/fixtures/formats/<name>.<ext> + <name>.ref.png.

  pip install pillow && python3 scripts/tools/make_format_fixtures.py
"""
import os
from PIL import Image

out = os.path.join(os.path.dirname(__file__), '..', '..', 'test', 'fixtures', 'formats')
os.makedirs(out, exist_ok=True)
W, H = 37, 23  # odd sizes: BMP rows are padded to 4 bytes


def rgb():
    im = Image.new('RGB', (W, H))
    px = im.load()
    for y in range(H):
        for x in range(W):
            px[x, y] = ((x * 7) % 256, (y * 11) % 256, (x * y) % 256)
    return im


base = rgb()
base.save(os.path.join(out, 'rgb24.bmp'))                      # 24-bit BI_RGB, bottom-up (what Windows Paint writes)
base.save(os.path.join(out, 'rgb24.ref.png'))
pal = base.quantize(colors=16)                                 # 8-bit palette BMP with a colour palette
pal.save(os.path.join(out, 'pal8.bmp'))
pal.convert('RGB').save(os.path.join(out, 'pal8.ref.png'))
grey = base.convert('L')                                       # 8-bit grey (palette of greys)
grey.save(os.path.join(out, 'grey8.bmp'))
grey.convert('RGB').save(os.path.join(out, 'grey8.ref.png'))
bw = base.convert('1')                                         # 1-bit
bw.save(os.path.join(out, 'bw1.bmp'))
bw.convert('RGB').save(os.path.join(out, 'bw1.ref.png'))
rgba = base.convert('RGBA')                                    # 32-bit with an alpha channel, fully opaque
rgba.save(os.path.join(out, 'rgba32.bmp'))
base.save(os.path.join(out, 'rgba32.ref.png'))
# GIF (palette, LZW): Pillow's encoder.
pal.save(os.path.join(out, 'pal.gif'))
# A binary mask as 8-bit grey BMP (0/255).
m = Image.new('L', (W, H), 0)
for y in range(5, 15):
    for x in range(10, 20):
        m.putpixel((x, y), 255)
m.save(os.path.join(out, 'mask.bmp'))
print('wrote', sorted(os.listdir(out)))
