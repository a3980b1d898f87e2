'use strict';
// The extension's JSONL folder, written without locks (Node has no flock):
// every writer owns its files.
//
//   ext-<UTC yyyymmddThhmmssmmm>-<pid>-<8 hex>.jsonl         a segment: one writer appends to it
//   ext-<UTC yyyymmddThhmmssmmm>-<pid>-<8 hex>.sealed.jsonl  finished: never written again
//
// - A writer creates its segment with O_EXCL (0600, folder 0700) and appends
//   every event as ONE write() of one complete line (O_APPEND). It is the only
//   writer of that file, so a short write (disk full) is completed or cut back
//   to where its line started: no torn line glues itself to the next one.
// - Before each write it checks that its path still names its file (same inode);
//   if not (sealed or removed by someone else), it starts a new segment.
// - A segment past `maxSegmentBytes` or `maxSegmentAgeMs` is sealed: closed, then
//   renamed to `.sealed.jsonl`. `close()` seals too. A segment whose writer is gone
//   (its pid is not running, or it was not written for twice the age limit) is
//   sealed by the next writer that starts.
// - The daemon reads every `*.jsonl` here from a checkpoint kept per file
//   identity (inode + first line), which a rename keeps: sealing never makes it
//   read a line twice or miss one. A sealed file is final, so once read and
//   delivered it may be deleted by the daemon's retention; nothing else is.

const fs = require('node:fs');
const path = require('node:path');
const { randomBytes } = require('node:crypto');

const SEGMENT_RE = /^ext-(\d{8}T\d{9})-(\d+)-([0-9a-f]{8})\.jsonl$/;
const SEALED_SUFFIX = '.sealed.jsonl';
const MiB = 1024 * 1024;
const HOUR_MS = 3600 * 1000;
const OPEN_FLAGS = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_EXCL;

class ExtensionEventWriter {
  /**
   * @param {string} dir  the extension's telemetry folder (globalStorage/…/telemetry)
   * @param {{maxSegmentBytes?: number, maxSegmentAgeMs?: number, now?: () => number}} [options]
   */
  constructor(dir, { maxSegmentBytes = 8 * MiB, maxSegmentAgeMs = 24 * HOUR_MS, now = Date.now } = {}) {
    if (typeof dir !== 'string' || !path.isAbsolute(dir)) {
      throw new TypeError(`the events folder must be an absolute path, got ${JSON.stringify(dir)}`);
    }
    this.dir = dir;
    this.maxSegmentBytes = maxSegmentBytes;
    this.maxSegmentAgeMs = maxSegmentAgeMs;
    this.now = now;
    this.path = null; // the current segment
    this._fd = -1;
    this._ino = null;
    this._dev = null;
    this._size = 0;
    this._born = 0;
    this._needsNewline = false;
    this._sweptAbandoned = false;
  }

  /** Append one complete line (a Buffer ending in "\n"). Throws the OSError when it cannot. */
  appendLine(line) {
    if (this._fd >= 0 && this._due(line.length)) this.seal();
    if (this._fd >= 0 && !this._stillOurs()) this._forget();
    if (this._fd < 0) this._open();
    if (this._needsNewline) line = Buffer.concat([Buffer.from('\n'), line]);
    let written = 0;
    try {
      written = fs.writeSync(this._fd, line);
      while (written < line.length) {
        const more = fs.writeSync(this._fd, line, written);
        if (more <= 0) throw Object.assign(new Error('no progress writing the line'), { code: 'EIO' });
        written += more;
      }
    } catch (error) {
      this._undo(written);
      throw error;
    }
    this._size += line.length;
    this._needsNewline = false;
  }

  /** Seal the current segment (an empty one is removed). The next line starts a new one. */
  seal() {
    if (this._fd < 0) return;
    const current = this.path;
    const empty = this._size === 0;
    this._forget();
    try {
      if (empty) fs.unlinkSync(current);
      else fs.renameSync(current, sealedName(current));
    } catch (error) {
      if (error.code !== 'ENOENT') throw error; // sealed or removed by someone else meanwhile
    }
  }

  /** Seal segments left by writers that are gone; returns their new paths. */
  sealAbandoned() {
    const sealed = [];
    let names;
    try {
      names = fs.readdirSync(this.dir);
    } catch (error) {
      if (error.code === 'ENOENT') return sealed;
      throw error;
    }
    const staleBefore = this.now() - 2 * this.maxSegmentAgeMs;
    for (const name of names) {
      const match = SEGMENT_RE.exec(name);
      const file = path.join(this.dir, name);
      if (!match || file === this.path) continue;
      const pid = Number(match[2]);
      let stale = false;
      try {
        stale = fs.statSync(file).mtimeMs < staleBefore;
      } catch {
        continue; // sealed meanwhile
      }
      if ((pid !== process.pid && !processRuns(pid)) || stale) {
        try {
          fs.renameSync(file, sealedName(file));
          sealed.push(sealedName(file));
        } catch (error) {
          if (error.code !== 'ENOENT') throw error;
        }
      }
    }
    return sealed;
  }

  close() {
    this.seal();
  }

  _due(bytes) {
    return (this._size > 0 && this._size + bytes > this.maxSegmentBytes)
      || this.now() - this._born >= this.maxSegmentAgeMs;
  }

  _stillOurs() {
    let st;
    try {
      st = fs.statSync(this.path, { bigint: true });
    } catch {
      return false;
    }
    return st.ino === this._ino && st.dev === this._dev;
  }

  _open() {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (!this._sweptAbandoned) {
      this._sweptAbandoned = true;
      try {
        this.sealAbandoned();
      } catch {
        // a folder we cannot list fully does not stop this writer
      }
    }
    const born = this.now();
    const stamp = new Date(born).toISOString().replace(/[-:]/g, '').replace('.', '').slice(0, 18);
    const file = path.join(this.dir, `ext-${stamp}-${process.pid}-${randomBytes(4).toString('hex')}.jsonl`);
    const fd = fs.openSync(file, OPEN_FLAGS, 0o600);
    const st = fs.fstatSync(fd, { bigint: true });
    this._fd = fd;
    this.path = file;
    this._ino = st.ino;
    this._dev = st.dev;
    this._size = 0;
    this._born = born;
    this._needsNewline = false; // a fresh file: its first line must be an event (it names the file)
  }

  _undo(written) {
    if (written === 0) return;
    try { // we are this file's only writer: our fragment is its tail
      if (Number(fs.fstatSync(this._fd).size) !== this._size + written) throw new Error('the file grew');
      fs.ftruncateSync(this._fd, this._size);
    } catch {
      this._needsNewline = true; // the next line starts on a line of its own
    }
  }

  _forget() {
    if (this._fd >= 0) {
      try {
        fs.closeSync(this._fd);
      } catch {
        // already closed
      }
    }
    this._fd = -1;
    this.path = null;
    this._ino = this._dev = null;
    this._size = 0;
  }
}

function sealedName(file) {
  return file.slice(0, -'.jsonl'.length) + SEALED_SUFFIX;
}

function processRuns(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

module.exports = { ExtensionEventWriter, SEALED_SUFFIX, SEGMENT_RE };
