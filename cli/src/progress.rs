//! Progress lines of long runs on stderr.

use bertling_compressor::distill::Progress;

/// Seconds as `1h02m`, `3m05s` or `42s`.
pub(crate) fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Prints a step's progress line: rewritten in place on a terminal, otherwise every 5 % of the
/// steps.
pub(crate) fn step_line(tty: bool, line: &str, step: usize, steps: usize) {
    if tty {
        eprint!("\r\x1b[2K{line}");
    } else if step == steps || step.is_multiple_of((steps / 20).max(1)) {
        eprintln!("{line}");
    }
}

/// Prints a line that stays (a dev score), below a rewritten progress line on a terminal.
pub(crate) fn lasting_line(tty: bool, line: &str) {
    if tty {
        eprint!("\r\x1b[2K{line}\n");
    } else {
        eprintln!("{line}");
    }
}

/// A one-line progress report on stderr (rewritten in place on a terminal, every 5 % otherwise).
pub(crate) fn progress_printer(what: &'static str) -> impl FnMut(&Progress) {
    progress_printer_named(what.to_string())
}

pub(crate) fn progress_printer_named(what: String) -> impl FnMut(&Progress) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    move |p: &Progress| {
        let filled = (p.step * 20).checked_div(p.steps).unwrap_or(20).min(20);
        let cache = p
            .cache
            .map(|c| format!("  cache {} hits, {} new ({:.1} GB)", c.hits, c.misses, c.bytes as f64 / 1e9))
            .unwrap_or_default();
        let line = format!(
            "{what} [{}{}] {:>5}/{} loss {:.4} (hidden {:.4}, attention {:.4}, embedding {:.4}, \
             logits {:.4}, sentence {:.4})  {:.0} tok/s  lr {:.2e}  eta {}{cache}",
            "#".repeat(filled),
            "-".repeat(20 - filled),
            p.step,
            p.steps,
            p.losses.total,
            p.losses.hidden,
            p.losses.attention,
            p.losses.embedding,
            p.losses.logits,
            p.losses.sentence,
            p.tokens_per_s,
            p.lr,
            duration(p.eta_s)
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
            if p.step == p.steps {
                eprintln!();
            }
        } else if p.step == p.steps || p.step.is_multiple_of((p.steps / 20).max(1)) {
            eprintln!("{line}");
        }
        if let Some(e) = &p.eval {
            let cos = e
                .cosine_mean
                .zip(e.cosine_p5)
                .map(|(m, p5)| format!(", cosine to teacher {m:.4} (p5 {p5:.4})"))
                .unwrap_or_default();
            let line = format!(
                "{what} eval at step {}: loss {:.4} over {} texts{cos}",
                p.step, e.loss.total, e.texts
            );
            if tty {
                eprint!("\r\x1b[2K{line}\n");
            } else {
                eprintln!("{line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(super::duration(-3.0), "0s");
        assert_eq!(super::duration(59.4), "59s");
        assert_eq!(super::duration(59.6), "1m00s");
        assert_eq!(super::duration(185.0), "3m05s");
        assert_eq!(super::duration(3720.0), "1h02m");
        assert_eq!(super::duration(90_000.0), "25h00m");
    }
}
