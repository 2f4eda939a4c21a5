//! Probing and decoding of untrusted audio bytes, as the API and the worker
//! run them: no input may panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../shared/src/audio.rs"]
#[allow(dead_code)]
mod audio;

fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if audio::probe(bytes.clone()).is_ok() {
        // Ten minutes at 16 kHz at most: the bound the worker applies.
        let _ = audio::decode_to_mono_16k(bytes, 600.0);
    }
});
