// The machine's state next to a bench's figures: load average and CPU model.
import { cpus, loadavg } from 'node:os';

export function loadOs(): string {
  const l = loadavg().map((x) => x.toFixed(2)).join(' ');
  return `cpu: ${cpus()[0]?.model ?? '?'} x${cpus().length}, load average ${l}`;
}
