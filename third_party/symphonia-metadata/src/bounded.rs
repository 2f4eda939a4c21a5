// voxq: added to the vendored crate (see VOXQ-PATCH.md).
//
// This Source Code Form is subject to the terms of the Mozilla Public
// License, v. 2.0. If a copy of the MPL was not distributed with this
// file, You can obtain one at https://mozilla.org/MPL/2.0/.

//! Reads of lengths that a file declares: memory follows the bytes that are
//! really there, not the length a (hostile) header claims.

use std::io;

use symphonia_core::io::ReadBytes;

/// At most this much is allocated ahead of the bytes actually read.
const STEP: usize = 64 * 1024;

/// Reads exactly `len` bytes, growing the buffer as they arrive.
pub fn read_exact<B: ReadBytes>(reader: &mut B, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len.min(STEP));
    while buf.len() < len {
        let start = buf.len();
        let step = (len - start).min(STEP);
        buf.resize(start + step, 0);
        reader.read_buf_exact(&mut buf[start..])?;
    }
    Ok(buf)
}
