//! The core budget: threads that never sleep against the cores that can run them.

use crate::error::Error;

/// The outcome of a budget check that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Everything fits.
    Fits,
    /// Over budget, but the user forced it: say so.
    Forced(String),
}

/// Checks that `spinning` always-busy workers plus libzmq's `io_threads` fit on `available`
/// cores. Over budget is an error unless `force`, when it is a warning to log.
pub(crate) fn check(
    spinning: usize,
    io_threads: usize,
    available: usize,
    force: bool,
) -> Result<Budget, Error> {
    let needed = spinning + io_threads;
    if spinning == 0 || needed <= available {
        return Ok(Budget::Fits);
    }
    let err = Error::CoreBudget { spinning, io_threads, needed, available };
    if force {
        Ok(Budget::Forced(err.to_string()))
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_past_the_cores_is_an_error_unless_forced() {
        assert_eq!(check(1, 1, 2, false).unwrap(), Budget::Fits);
        assert_eq!(check(2, 0, 2, false).unwrap(), Budget::Fits);
        let e = check(2, 1, 2, false).unwrap_err().to_string();
        assert!(e.contains("need 3 cores") && e.contains("only 2"), "{e}");
        assert!(matches!(check(2, 1, 2, true).unwrap(), Budget::Forced(_)));
        // Blocking workers never count, however many I/O threads there are.
        assert_eq!(check(0, 8, 2, false).unwrap(), Budget::Fits);
    }
}
