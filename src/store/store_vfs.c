/* SPDX-License-Identifier: MIT */

/*
 * The store's VFS: SQLite's own ("unix"), with one change. Writes that
 * extend a WAL are gathered and handed to the kernel together.
 *
 * SQLite writes a WAL frame as two pwrite() calls, its 24-byte header and
 * its page, so a commit of 100 pages made 200 system calls, a third of
 * what the writer thread spent in COMMIT. Here the frames a transaction
 * appends collect in a buffer while each write continues the last, and go
 * to the file in a few calls at the latest when the transaction's commit
 * frame is complete: so before SQLite syncs the WAL (synchronous=FULL) and,
 * in every mode, before it publishes the commit in the WAL index to other
 * connections.
 *
 * Only appends wait. A write inside what this WAL already holds (SQLite
 * rewrites a frame's page in place when a transaction writes a spilled
 * page again, and then the checksums of the frames after it, the commit
 * frame's included, after that frame was written) first writes the buffer
 * out and then goes through at once. So does everything that reads or
 * measures the file (a read, its size, a sync, a truncation, close). A
 * write at offset 0 is the header of a WAL started over: what the file
 * holds is counted from there. A WAL that SQLite pads to a sector after
 * each commit (its database file without SQLITE_IOCAP_POWERSAFE_OVERWRITE:
 * the last padding frame is written after the sync) is not buffered at all.
 *
 * The database file's calls frame each transaction: when the writer's
 * shared-memory lock is given back, or the file's lock (exclusive locking
 * mode takes no shared-memory lock, and leaves at a transaction's end),
 * what the buffer still holds belongs to a transaction that rolled back
 * and is dropped (another connection may write that part of the WAL
 * next); and SQLite's barrier before it
 * publishes a commit in the WAL index writes the buffer out, a safeguard,
 * since the commit frame did.
 *
 * A crash loses what the buffer held: frames of a transaction that had not
 * committed, which SQLite's recovery discards anyway.
 *
 * The commit frame is known by its header (https://sqlite.org/fileformat2.html,
 * "WAL File Format"): bytes 4-7, big-endian, hold the database's size in
 * pages after a commit, and 0 in every other frame.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/xmalloc.h"
#include "store/store_int.h"

/* The most a WAL's buffer holds before it is written out. */
#define VFS_BUFFER_BYTES (512 * 1024)
/* The most one write hands the unix VFS: it writes at most 0x1ffff bytes
 * a call (seekAndWriteFd() masks the length), and 0 makes it report a
 * full disk. */
#define VFS_WRITE_MAX (31 * 4096)
/* A WAL frame's header, and where in it a commit frame keeps its size. */
#define VFS_FRAME_HEADER 24

struct vfs_file {
    sqlite3_file base;  /* pMethods: vfs_methods */
    sqlite3_file *real; /* the underlying VFS's file, right after this struct */
    int gather;         /* a WAL whose appends are buffered */
    /* A WAL's appends not yet handed on: len bytes from offset at. */
    unsigned char *buf;
    size_t len;
    sqlite3_int64 at;
    sqlite3_int64 end; /* how far the WAL reaches, written or buffered, since its header */
    int commit_next;   /* the last write was a commit frame's header: its page comes next */
    /* A database file and its WAL, each the other's (vfs_open()). */
    struct vfs_file *wal, *db;
};

/* The underlying file lies right after ours, and must be aligned as it is. */
_Static_assert(sizeof(struct vfs_file) % 8 == 0, "the underlying sqlite3_file is misaligned");

static sqlite3_vfs *real_vfs;

/* len bytes of buf to the file at off, at most VFS_WRITE_MAX a call.
 * Returns SQLite's code. */
static int
write_through(struct vfs_file *f, const void *buf, size_t len, sqlite3_int64 off)
{
    size_t done = 0;
    int rc = SQLITE_OK;

    while (rc == SQLITE_OK && done < len) {
        size_t n = len - done < VFS_WRITE_MAX ? len - done : VFS_WRITE_MAX;

        rc = f->real->pMethods->xWrite(f->real, (const unsigned char *)buf + done, (int)n,
                                       off + (sqlite3_int64)done);
        done += n;
    }
    return rc;
}

/* Hand the buffer to the file. Returns SQLite's code. */
static int
flush(struct vfs_file *f)
{
    int rc = write_through(f, f->buf, f->len, f->at);

    f->len = 0;
    return rc;
}

/* Drop what the buffer holds: a rolled-back transaction's frames. The WAL
 * reaches as far as before them. */
static void
drop(struct vfs_file *f)
{
    if (f->len > 0)
        f->end = f->at;
    f->len = 0;
}

/* Whether buf, written at a frame header's place, is a commit frame's header. */
static int
is_commit_header(const unsigned char *buf)
{
    return (buf[4] | buf[5] | buf[6] | buf[7]) != 0;
}

static int
vfs_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc, commit = f->commit_next;

    if (!f->gather)
        return write_through(f, buf, (size_t)amt, off);
    f->commit_next = 0;
    if (off == 0)
        f->end = 0; /* the header of a WAL started over */
    /* Into what the WAL holds already: the buffer first, then this, at once. */
    if (off < f->end || (size_t)amt > VFS_BUFFER_BYTES) {
        rc = flush(f);
        if (rc == SQLITE_OK)
            rc = write_through(f, buf, (size_t)amt, off);
        if (rc == SQLITE_OK && off + amt > f->end)
            f->end = off + amt;
        return rc;
    }
    if (f->len > 0 &&
        (off != f->at + (sqlite3_int64)f->len || f->len + (size_t)amt > VFS_BUFFER_BYTES)) {
        rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (f->buf == NULL)
        f->buf = xmalloc(VFS_BUFFER_BYTES);
    if (f->len == 0)
        f->at = off;
    memcpy(f->buf + f->len, buf, (size_t)amt);
    f->len += (size_t)amt;
    f->end = off + amt;
    f->commit_next = amt == VFS_FRAME_HEADER && is_commit_header(buf);
    /* A commit frame's page: the transaction is whole, and goes now. */
    return commit ? flush(f) : SQLITE_OK;
}

static int
vfs_close(sqlite3_file *file)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc = flush(f), crc = f->real->pMethods->xClose(f->real);

    if (f->db != NULL && f->db->wal == f)
        f->db->wal = NULL;
    if (f->wal != NULL && f->wal->db == f)
        f->wal->db = NULL;

    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : crc;
}

static int
vfs_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc = flush(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int
vfs_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc = flush(f);

    if (rc != SQLITE_OK)
        return rc;
    if (size < f->end)
        f->end = size;
    return f->real->pMethods->xTruncate(f->real, size);
}

static int
vfs_sync(sqlite3_file *file, int flags)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc = flush(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
vfs_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc = flush(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

/* The rest only pass through. (A file control does not write the buffer
 * out: SQLite ignores what some of them return, and none reads the WAL.) */

static int
vfs_file_control(sqlite3_file *file, int op, void *arg)
{
    struct vfs_file *f = (struct vfs_file *)file;

    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int
vfs_lock(sqlite3_file *file, int level)
{
    struct vfs_file *f = (struct vfs_file *)file;

    return f->real->pMethods->xLock(f->real, level);
}

static int
vfs_unlock(sqlite3_file *file, int level)
{
    struct vfs_file *f = (struct vfs_file *)file;

    /* The database's lock given back: in exclusive locking mode the WAL's
     * write lock is never taken from shared memory, so a transaction that
     * ends that mode ends here; as above, anything left is rolled back. */
    if (f->wal != NULL)
        drop(f->wal);
    return f->real->pMethods->xUnlock(f->real, level);
}

static int
vfs_check_reserved(sqlite3_file *file, int *out)
{
    struct vfs_file *f = (struct vfs_file *)file;

    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int
vfs_sector_size(sqlite3_file *file)
{
    struct vfs_file *f = (struct vfs_file *)file;

    return f->real->pMethods->xSectorSize(f->real);
}

static int
vfs_device_characteristics(sqlite3_file *file)
{
    struct vfs_file *f = (struct vfs_file *)file;

    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int
vfs_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    struct vfs_file *f = (struct vfs_file *)file;

    return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

/* SQLite's WAL_WRITE_LOCK (wal.c): the shared-memory lock of the one writer. */
#define VFS_WAL_WRITE_LOCK 0

static int
vfs_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    struct vfs_file *f = (struct vfs_file *)file;

    /* The write transaction ends. A commit wrote its frames out, so what
     * the WAL's buffer still holds is a rolled-back transaction's: it must
     * never reach the file, where another connection may write next. */
    if (f->wal != NULL && offset == VFS_WAL_WRITE_LOCK &&
        flags == (SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE))
        drop(f->wal);
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void
vfs_shm_barrier(sqlite3_file *file)
{
    struct vfs_file *f = (struct vfs_file *)file;

    /* SQLite calls this before it publishes a commit in the WAL index; the
     * commit frame wrote the buffer out already, so this is a safeguard. */
    if (f->wal != NULL)
        (void)flush(f->wal);
    f->real->pMethods->xShmBarrier(f->real);
}

static int
vfs_shm_unmap(sqlite3_file *file, int delete_flag)
{
    struct vfs_file *f = (struct vfs_file *)file;

    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int
vfs_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc = flush(f);

    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int
vfs_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    struct vfs_file *f = (struct vfs_file *)file;

    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods vfs_methods = {
    .iVersion = 3,
    .xClose = vfs_close,
    .xRead = vfs_read,
    .xWrite = vfs_write,
    .xTruncate = vfs_truncate,
    .xSync = vfs_sync,
    .xFileSize = vfs_file_size,
    .xLock = vfs_lock,
    .xUnlock = vfs_unlock,
    .xCheckReservedLock = vfs_check_reserved,
    .xFileControl = vfs_file_control,
    .xSectorSize = vfs_sector_size,
    .xDeviceCharacteristics = vfs_device_characteristics,
    .xShmMap = vfs_shm_map,
    .xShmLock = vfs_shm_lock,
    .xShmBarrier = vfs_shm_barrier,
    .xShmUnmap = vfs_shm_unmap,
    .xFetch = vfs_fetch,
    .xUnfetch = vfs_unfetch,
};

static int
vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc;

    (void)vfs;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    /* SQLite calls xClose only on a file whose pMethods is set. */
    if (f->real->pMethods == NULL)
        return rc;
    if (rc != SQLITE_OK) {
        f->real->pMethods->xClose(f->real);
        return rc;
    }
    f->base.pMethods = &vfs_methods;
    if (f->real->pMethods->iVersion < 3) { /* no shared memory to pass on: not unix's */
        f->base.pMethods = NULL;
        f->real->pMethods->xClose(f->real);
        return SQLITE_CANTOPEN;
    }
    /* SQLite pads commits to a sector (walOpen()) when the database file
     * lacks powersafe overwrite: such a WAL is not gathered. */
    if (flags & SQLITE_OPEN_WAL) {
        sqlite3_file *db = sqlite3_database_file_object(name);

        if (db != NULL && db->pMethods == &vfs_methods &&
            (db->pMethods->xDeviceCharacteristics(db) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0) {
            f->gather = 1;
            f->db = (struct vfs_file *)db;
            f->db->wal = f;
        }
    }
    return rc;
}

/* The calls on the VFS itself are the underlying one's. */

static int
vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int
vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int
vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int
vfs_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int
vfs_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int
vfs_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int
vfs_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int
vfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static sqlite3_vfs store_vfs = {
    .iVersion = 2,
    .zName = STORE_VFS_NAME,
    .xOpen = vfs_open,
    .xDelete = vfs_delete,
    .xAccess = vfs_access,
    .xFullPathname = vfs_full_pathname,
    .xRandomness = vfs_randomness,
    .xSleep = vfs_sleep,
    .xCurrentTime = vfs_current_time,
    .xGetLastError = vfs_last_error,
    .xCurrentTimeInt64 = vfs_current_time_int64,
};

static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_rc = SQLITE_ERROR;

static void
vfs_register_once(void)
{
    real_vfs = sqlite3_vfs_find("unix");
    if (real_vfs == NULL || real_vfs->iVersion < 2)
        return;
    store_vfs.szOsFile = (int)sizeof(struct vfs_file) + real_vfs->szOsFile;
    store_vfs.mxPathname = real_vfs->mxPathname;
    vfs_rc = sqlite3_vfs_register(&store_vfs, 0);
}

int
store_vfs_register(void)
{
    (void)pthread_once(&vfs_once, vfs_register_once);
    return vfs_rc;
}
