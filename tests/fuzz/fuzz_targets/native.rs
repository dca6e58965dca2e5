#![no_main]
//! The native parser, named explicitly (as `?format=native` does).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rampart_fuzz::check(Some(rampart::ingest::ReportFormat::Native), data);
});
