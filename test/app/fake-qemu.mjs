// A stand-in for qemu-system-x86_64 in the capture test: it checks that the trace options were added
// (exit 3 if not, as QEMU would log nothing useful), writes a real host log (traces/real, lazy VT-d
// phase 7) to the -D file and the matching guest ftrace to the first `-serial file:` path.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fix = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real');
const args = process.argv.slice(2);
const after = (opt) => args.flatMap((a, i) => (a === opt && i + 1 < args.length ? [args[i + 1]] : []));
const traces = after('-trace');
const ok = after('-msg').includes('timestamp=on') && ['vtd_*', 'virtio_*', 'virtqueue_*', 'vhost_*', 'pci_cfg_write'].every((p) => traces.includes(p));
if (!ok) process.exit(3);
const log = after('-D').at(-1);
copyFileSync(join(fix, 'qemu-vtd-lazy.p007-net-up.log'), log);
const serial = after('-serial').find((s) => s.startsWith('file:'));
if (serial) copyFileSync(join(fix, 'guest-vtd-lazy.p007-net-up.txt'), serial.slice(5));
process.exit(Number(process.env.FAKE_QEMU_EXIT ?? 0));
