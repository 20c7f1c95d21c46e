//! The power switch: SIGUSR1 power-cycles the device (it reboots with a fresh
//! engine), at any time and to end a hang (`--hang-at-job`). The signal handler
//! only writes a byte to a pipe; a thread turns each wake-up into an input of the
//! front end's channel, so the reboot itself runs on the main thread.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Sender;

use crate::device::Input;

/// The write end of the pipe, for the handler (-1 before installation).
static WAKE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_usr1(_sig: libc::c_int) {
    let fd = WAKE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = [1u8];
        // SAFETY: write(2) is async-signal-safe; the buffer is valid for 1 byte.
        unsafe {
            libc::write(fd, b.as_ptr().cast(), 1);
        }
    }
}

/// Installs the SIGUSR1 handler; each power cycle is sent as [`Input::PowerCycle`].
pub fn install(tx: Sender<Input>) -> io::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    WAKE.store(write_fd, Ordering::Relaxed);
    // SAFETY: a zeroed sigaction is a valid start; the handler is an extern "C" fn
    // that only calls async-signal-safe functions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    std::thread::Builder::new()
        .name("power-switch".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                // SAFETY: buf is valid for its length; read_fd stays open for good.
                let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    if tx.send(Input::PowerCycle).is_err() {
                        return;
                    }
                } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                } else {
                    return;
                }
            }
        })?;
    Ok(())
}
