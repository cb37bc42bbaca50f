//! A dependency-free SVG scatter plot: panels side by side sharing the y axis's meaning, one
//! colour per series, each point labelled.

/// Panels `(x label, series)`, each series `(name, points (x, y, label))`.
pub type Panel<'a> = (&'a str, Vec<(&'a str, Vec<(f64, f64, String)>)>);

const W: f64 = 460.0;
const H: f64 = 340.0;
const PAD: f64 = 56.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The range of `v` padded by 5 % (a unit range around a single value).
fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 * lo.abs().max(1e-3) };
    (lo - pad, hi + pad)
}

/// The plot as an SVG document.
pub fn scatter_svg(panels: &[Panel], y_label: &str) -> String {
    let width = W * panels.len().max(1) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{H}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n"
    );
    for (i, (x_label, series)) in panels.iter().enumerate() {
        let x0 = W * i as f64;
        let all = || series.iter().flat_map(|(_, p)| p.iter());
        let (xl, xh) = range(all().map(|p| p.0));
        let (yl, yh) = range(all().map(|p| p.1));
        let px = |x: f64| x0 + PAD + (x - xl) / (xh - xl) * (W - 2.0 * PAD);
        let py = |y: f64| H - PAD - (y - yl) / (yh - yl) * (H - 2.0 * PAD);
        s += &format!(
            "<rect x=\"{}\" y=\"{PAD}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n",
            x0 + PAD,
            W - 2.0 * PAD,
            H - 2.0 * PAD
        );
        for t in 0..=4 {
            let (fx, fy) = (xl + (xh - xl) * t as f64 / 4.0, yl + (yh - yl) * t as f64 / 4.0);
            s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{fx:.3}</text>\n",
                px(fx),
                H - PAD + 14.0
            );
            s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{fy:.3}</text>\n",
                x0 + PAD - 4.0,
                py(fy) + 4.0
            );
        }
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            x0 + W / 2.0,
            H - 14.0,
            escape(x_label)
        );
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 {:.1} \
             {:.1})\">{}</text>\n",
            x0 + 14.0,
            H / 2.0,
            x0 + 14.0,
            H / 2.0,
            escape(y_label)
        );
        for (j, (name, points)) in series.iter().enumerate() {
            let c = COLOURS[j % COLOURS.len()];
            s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\">● {}</text>\n",
                x0 + PAD + 6.0 + 110.0 * j as f64,
                PAD - 10.0,
                escape(name)
            );
            for (x, y, label) in points {
                s += &format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{c}\"><title>{}</title>\
                     </circle>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\" font-size=\"9\">{}</text>\n",
                    px(*x),
                    py(*y),
                    escape(label),
                    px(*x) + 5.0,
                    py(*y) - 5.0,
                    escape(label)
                );
            }
        }
    }
    s + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points land where the axes say: the smallest x at the left edge of the plot area (after
    /// the 5 % padding), the largest y at the top.
    #[test]
    fn points_are_placed_on_the_axes() {
        let pts = vec![(1.0, 0.5, "a".to_string()), (3.0, 0.9, "b<c".to_string())];
        let svg = scatter_svg(&[("MB", vec![("searched", pts)])], "STS-B");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("b&lt;c") && !svg.contains("b<c"));
        // x range [0.9, 3.1] over 348 px: x = 1 → 56 + 0.1/2.2·348 ≈ 71.8.
        assert!(svg.contains("cx=\"71.8\""), "{svg}");
        // y range [0.48, 0.92] over 228 px: y = 0.9 → 340 − 56 − 0.42/0.44·228 ≈ 66.4.
        assert!(svg.contains("cy=\"66.4\""), "{svg}");
    }
}
