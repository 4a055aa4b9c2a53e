//! `ztick_recorder`: an HdrHistogram of latencies (1 ns to 60 s, 3 significant digits).

use std::ffi::c_char;

use super::{arg, arg_mut, arg_str, guard, guard_or, ztick_result, Failure};
use crate::metrics::LatencyRecorder;

/// A latency recorder: 1 ns to 60 s, 3 significant digits, about 220 KiB. Recording never
/// allocates, locks or fails on a value (0 counts as 1 ns, above 60 s as 60 s).
pub struct ztick_recorder {
    pub(crate) inner: LatencyRecorder,
}

/// A recorder's figures, in nanoseconds; all zero when it is empty.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ztick_latency_summary {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p99_9_ns: u64,
    /// 99.99th percentile.
    pub p99_99_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl ztick_recorder {
    pub(crate) fn boxed(inner: LatencyRecorder) -> *mut ztick_recorder {
        Box::into_raw(Box::new(ztick_recorder { inner }))
    }
}

/// A new, empty recorder. Free it with `ztick_recorder_free`.
///
/// # Safety
///
/// `recorder_out` must be valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_new(recorder_out: *mut *mut ztick_recorder) -> ztick_result {
    guard(|| {
        if recorder_out.is_null() {
            return Err(Failure::null("recorder_out"));
        }
        // SAFETY: checked not NULL; writable by the caller's contract.
        unsafe { *recorder_out = ztick_recorder::boxed(LatencyRecorder::new()) };
        Ok(())
    })
}

/// Records one latency in nanoseconds.
///
/// # Safety
///
/// `recorder` must be NULL or a live recorder that no other thread uses during the call.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_record(
    recorder: *mut ztick_recorder,
    latency_ns: u64,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and used by this call only, by the caller's contract.
        let r = unsafe { arg_mut(recorder, "recorder") }?;
        r.inner.record(latency_ns);
        Ok(())
    })
}

/// Records one latency with coordinated-omission correction: under a load meant to send
/// one message every `expected_interval_ns`, a stall also delayed the messages that should
/// have left during it, and those are recorded too (0 turns the correction off).
///
/// # Safety
///
/// As `ztick_recorder_record`.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_record_corrected(
    recorder: *mut ztick_recorder,
    latency_ns: u64,
    expected_interval_ns: u64,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and used by this call only, by the caller's contract.
        let r = unsafe { arg_mut(recorder, "recorder") }?;
        r.inner.record_corrected(latency_ns, expected_interval_ns);
        Ok(())
    })
}

/// Values recorded (corrected ones included); 0 for NULL.
///
/// # Safety
///
/// `recorder` must be NULL or a live recorder not being changed during the call.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_count(recorder: *const ztick_recorder) -> u64 {
    guard_or(0, || {
        // SAFETY: NULL or live and unchanged during the call, by the caller's contract.
        unsafe { arg(recorder, "recorder") }.map_or(0, |r| r.inner.len())
    })
}

/// The latency at `percentile` (0 to 100: 99.9 is the 99.9th percentile) in nanoseconds,
/// within the histogram's precision; 0 when the recorder is empty.
///
/// # Safety
///
/// `recorder` must be NULL or a live recorder not being changed during the call;
/// `value_ns_out` must be valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_percentile(
    recorder: *const ztick_recorder,
    percentile: f64,
    value_ns_out: *mut u64,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and unchanged during the call, by the caller's contract.
        let r = unsafe { arg(recorder, "recorder") }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { arg_mut(value_ns_out, "value_ns_out") }?;
        if !(0.0..=100.0).contains(&percentile) {
            return Err(Failure::invalid(format!("percentile {percentile}: expected 0 to 100")));
        }
        *out = r.inner.value_at_quantile(percentile / 100.0);
        Ok(())
    })
}

/// Count, min, p50, p90, p99, p99.9, p99.99, max and mean, in nanoseconds.
///
/// # Safety
///
/// `recorder` must be NULL or a live recorder not being changed during the call;
/// `summary_out` must be valid for writing a `ztick_latency_summary`.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_summary(
    recorder: *const ztick_recorder,
    summary_out: *mut ztick_latency_summary,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and unchanged during the call, by the caller's contract.
        let r = unsafe { arg(recorder, "recorder") }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { arg_mut(summary_out, "summary_out") }?;
        let s = r.inner.summary();
        *out = ztick_latency_summary {
            count: s.count,
            min_ns: s.min,
            p50_ns: s.p50,
            p90_ns: s.p90,
            p99_ns: s.p99,
            p99_9_ns: s.p99_9,
            p99_99_ns: s.p99_99,
            max_ns: s.max,
            mean_ns: s.mean,
        };
        Ok(())
    })
}

/// Adds `from`'s counts to `into` (per-thread recorders into one total).
///
/// # Safety
///
/// Both must be NULL or live recorders; `into` used by no other thread and not the same
/// recorder as `from`, which must not be changed during the call.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_merge(
    into: *mut ztick_recorder,
    from: *const ztick_recorder,
) -> ztick_result {
    guard(|| {
        if std::ptr::eq(into, from) {
            return Err(Failure::invalid("merging a recorder into itself"));
        }
        // SAFETY: NULL or live, distinct from `from`, used by this call only.
        let into = unsafe { arg_mut(into, "into") }?;
        // SAFETY: NULL or live and unchanged during the call.
        let from = unsafe { arg(from, "from") }?;
        into.inner.merge(&from.inner);
        Ok(())
    })
}

/// Forgets every value, keeping the memory (e.g. at the end of an interval).
///
/// # Safety
///
/// As `ztick_recorder_record`.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_reset(recorder: *mut ztick_recorder) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and used by this call only, by the caller's contract.
        unsafe { arg_mut(recorder, "recorder") }?.inner.reset();
        Ok(())
    })
}

/// Writes HdrHistogram's standard percentile distribution (`.hgrm` text) to the file at
/// `path`, values divided by `output_scale` (1.0: nanoseconds, 1000.0: microseconds).
///
/// # Safety
///
/// `recorder` must be NULL or a live recorder not being changed during the call; `path`
/// NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_write_hgrm(
    recorder: *const ztick_recorder,
    path: *const c_char,
    output_scale: f64,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and unchanged during the call, by the caller's contract.
        let r = unsafe { arg(recorder, "recorder") }?;
        // SAFETY: NULL or a C string, by the caller's contract.
        let path = unsafe { arg_str(path, "path") }?;
        if !(output_scale.is_finite() && output_scale > 0.0) {
            return Err(Failure::invalid(format!("output_scale {output_scale}: expected a positive number")));
        }
        let io = |e: std::io::Error| Failure::new(ztick_result::Io, format!("writing {path}: {e}"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        r.inner.write_hgrm(&mut f, output_scale).map_err(io)?;
        std::io::Write::flush(&mut f).map_err(io)
    })
}

/// Frees a recorder. NULL is ignored.
///
/// # Safety
///
/// `recorder` must be NULL or a recorder from ztick not yet freed, unused by any other call
/// during or after this one.
#[no_mangle]
pub unsafe extern "C" fn ztick_recorder_free(recorder: *mut ztick_recorder) {
    guard_or((), || {
        if !recorder.is_null() {
            // SAFETY: from Box::into_raw, freed once, by the caller's contract.
            drop(unsafe { Box::from_raw(recorder) });
        }
    })
}
