#![no_main]
//! The sarif parser, named explicitly (as `?format=sarif` does).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rampart_fuzz::check(Some(rampart::ingest::ReportFormat::Sarif), data);
});
