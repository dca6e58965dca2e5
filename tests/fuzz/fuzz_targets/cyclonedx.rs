#![no_main]
//! The cyclonedx parser, named explicitly (as `?format=cyclonedx` does).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rampart_fuzz::check(Some(rampart::ingest::ReportFormat::CycloneDx), data);
});
