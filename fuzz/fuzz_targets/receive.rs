#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adi_fuzz::receive(data));
