//! Where the console is served: a pseudo-terminal (`--console pty`, its path
//! announced as the first line on stdout, `console: /dev/pts/N`) or stdin/stdout.
//! A reader thread hands the client's bytes to the front end's input channel; the
//! main thread writes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::sync::mpsc::Sender;

use serialport::SerialPort;

use crate::device::Input;

/// An open console.
pub struct Console {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
    /// The pty's slave end, kept open so that the master never sees a hang-up when
    /// the client closes the port, and a later open finds the console still there.
    pub keep: Option<serialport::TTYPort>,
}

fn cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates a pty, prints `console: PATH` as the first line on stdout.
pub fn pty() -> io::Result<Console> {
    let (master, slave) = serialport::TTYPort::pair().map_err(io::Error::other)?;
    let path = slave
        .name()
        .ok_or_else(|| io::Error::other("the pty has no name"))?;
    // The engines started later must not inherit the console.
    cloexec(master.as_raw_fd())?;
    cloexec(slave.as_raw_fd())?;
    // SAFETY: into_raw_fd hands over sole ownership of a valid open descriptor.
    let master = unsafe { File::from_raw_fd(master.into_raw_fd()) };
    let writer = master.try_clone()?;
    let mut out = io::stdout().lock();
    writeln!(out, "console: {path}")?;
    out.flush()?;
    Ok(Console {
        reader: Box::new(master),
        writer: Box::new(writer),
        keep: Some(slave),
    })
}

/// The console on stdin and stdout.
pub fn stdio() -> Console {
    Console {
        reader: Box::new(io::stdin()),
        writer: Box::new(io::stdout()),
        keep: None,
    }
}

/// Reads the client's bytes into `tx` until the console ends.
pub fn read_into(mut reader: Box<dyn Read + Send>, tx: Sender<Input>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Input::Console(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        eprintln!("mfp-testdev: reading the console: {e}");
                        break;
                    }
                }
            }
            let _ = tx.send(Input::ConsoleClosed);
        })?;
    Ok(())
}
