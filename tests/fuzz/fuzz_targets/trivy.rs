#![no_main]
//! The trivy parser, named explicitly (as `?format=trivy` does).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rampart_fuzz::check(Some(rampart::ingest::ReportFormat::Trivy), data);
});
