#![no_main]
//! Format detection from the content, then whichever parser it picks (no `format` given).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rampart::ingest::detect(data);
    rampart_fuzz::check(None, data);
});
