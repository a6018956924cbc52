//! Measured tables: 1-D ([`Table1d`]) and 2-D ([`Grid2d`]), piecewise-linear inside and
//! clamped outside (the crate's edge rule).

use serde::{Deserialize, Serialize};

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    /// Axes and values disagree in length, or an axis is empty.
    #[error("table shape: {0}")]
    Shape(String),
    /// An axis is not strictly increasing.
    #[error("table axis is not strictly increasing")]
    NotIncreasing,
    /// A NaN or infinity.
    #[error("table holds a non-finite number")]
    NotFinite,
}

/// A 1-D table `y(x)` over strictly increasing `x`: linear between points, clamped to the end
/// values outside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTable1d")]
pub struct Table1d {
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Table1d {
    /// Builds a table; `xs` must be strictly increasing, finite, and as long as `ys` (≥ 1).
    pub fn new(xs: Vec<f64>, ys: Vec<f64>) -> Result<Self, TableError> {
        if xs.is_empty() || xs.len() != ys.len() {
            return Err(TableError::Shape(format!(
                "1-D table needs equal non-empty axes, got {} x and {} y",
                xs.len(),
                ys.len()
            )));
        }
        check_axis(&xs)?;
        if ys.iter().any(|y| !y.is_finite()) {
            return Err(TableError::NotFinite);
        }
        Ok(Self { xs, ys })
    }

    /// The x axis.
    pub fn xs(&self) -> &[f64] {
        &self.xs
    }

    /// The y values.
    pub fn ys(&self) -> &[f64] {
        &self.ys
    }

    /// `y(x)`: interpolated inside the axis, the nearest end value outside it.
    pub fn eval(&self, x: f64) -> f64 {
        let n = self.xs.len();
        if n == 1 || x <= self.xs[0] {
            return self.ys[0];
        }
        if x >= self.xs[n - 1] {
            return self.ys[n - 1];
        }
        let i = self.xs.partition_point(|&v| v <= x) - 1;
        let (x0, x1, y0, y1) = (self.xs[i], self.xs[i + 1], self.ys[i], self.ys[i + 1]);
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }
}

/// A 2-D grid `z(x, y)` stored row-major by `y` (`z[j][i]` is at `xs[i]`, `ys[j]`): bilinear
/// inside, and outside the grid the value at the nearest edge (each axis clamped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawGrid2d")]
pub struct Grid2d {
    xs: Vec<f64>,
    ys: Vec<f64>,
    z: Vec<Vec<f64>>,
}

impl Grid2d {
    /// Builds a grid; both axes strictly increasing, `z.len() == ys.len()` and every row
    /// `xs.len()` long.
    pub fn new(xs: Vec<f64>, ys: Vec<f64>, z: Vec<Vec<f64>>) -> Result<Self, TableError> {
        if xs.is_empty() || ys.is_empty() || z.len() != ys.len() {
            return Err(TableError::Shape(format!(
                "2-D grid needs {} rows, got {}",
                ys.len(),
                z.len()
            )));
        }
        if let Some(row) = z.iter().find(|row| row.len() != xs.len()) {
            return Err(TableError::Shape(format!(
                "2-D grid rows need {} columns, got {}",
                xs.len(),
                row.len()
            )));
        }
        check_axis(&xs)?;
        check_axis(&ys)?;
        if z.iter().flatten().any(|v| !v.is_finite()) {
            return Err(TableError::NotFinite);
        }
        Ok(Self { xs, ys, z })
    }

    /// The x axis (columns).
    pub fn xs(&self) -> &[f64] {
        &self.xs
    }

    /// The y axis (rows).
    pub fn ys(&self) -> &[f64] {
        &self.ys
    }

    /// The values, `z()[j][i]` at `xs()[i]`, `ys()[j]`.
    pub fn z(&self) -> &[Vec<f64>] {
        &self.z
    }

    /// `z(x, y)`: along `x` within the two bracketing rows, then across them.
    pub fn eval(&self, x: f64, y: f64) -> f64 {
        let (i0, i1, tx) = bracket(&self.xs, x);
        let (j0, j1, ty) = bracket(&self.ys, y);
        let top = self.z[j0][i0] + (self.z[j0][i1] - self.z[j0][i0]) * tx;
        let bottom = self.z[j1][i0] + (self.z[j1][i1] - self.z[j1][i0]) * tx;
        top + (bottom - top) * ty
    }
}

/// Unchecked wire form of [`Table1d`]; validated on the way in.
#[derive(Deserialize)]
struct RawTable1d {
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl TryFrom<RawTable1d> for Table1d {
    type Error = TableError;
    fn try_from(raw: RawTable1d) -> Result<Self, TableError> {
        Self::new(raw.xs, raw.ys)
    }
}

/// Unchecked wire form of [`Grid2d`]; validated on the way in.
#[derive(Deserialize)]
struct RawGrid2d {
    xs: Vec<f64>,
    ys: Vec<f64>,
    z: Vec<Vec<f64>>,
}

impl TryFrom<RawGrid2d> for Grid2d {
    type Error = TableError;
    fn try_from(raw: RawGrid2d) -> Result<Self, TableError> {
        Self::new(raw.xs, raw.ys, raw.z)
    }
}

/// Indices of the cell around `v` and the weight of the upper index, clamped to the axis.
fn bracket(axis: &[f64], v: f64) -> (usize, usize, f64) {
    let n = axis.len();
    if n == 1 || v <= axis[0] {
        return (0, 0, 0.0);
    }
    if v >= axis[n - 1] {
        return (n - 1, n - 1, 0.0);
    }
    let hi = axis.partition_point(|&a| a <= v);
    let lo = hi - 1;
    (lo, hi, (v - axis[lo]) / (axis[hi] - axis[lo]))
}

fn check_axis(axis: &[f64]) -> Result<(), TableError> {
    if axis.iter().any(|v| !v.is_finite()) {
        return Err(TableError::NotFinite);
    }
    if axis.windows(2).any(|w| w[1] <= w[0]) {
        return Err(TableError::NotIncreasing);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_interpolates_and_clamps() {
        let t = Table1d::new(vec![0.0, 10.0, 20.0], vec![0.0, 100.0, 300.0]).unwrap();
        assert_eq!(t.eval(5.0), 50.0);
        assert_eq!(t.eval(15.0), 200.0);
        assert_eq!(t.eval(10.0), 100.0);
        assert_eq!(t.eval(30.0), 300.0);
        assert_eq!(t.eval(-10.0), 0.0);
    }

    #[test]
    fn table_rejects_bad_axes() {
        assert!(Table1d::new(vec![1.0, 1.0], vec![0.0, 1.0]).is_err());
        assert!(Table1d::new(vec![1.0], vec![]).is_err());
        assert!(Table1d::new(vec![1.0, f64::NAN], vec![0.0, 1.0]).is_err());
        assert!(Table1d::new(vec![0.0, 1.0], vec![0.0, f64::INFINITY]).is_err());
        assert_eq!(Table1d::new(vec![3.0], vec![7.0]).unwrap().eval(100.0), 7.0);
        let bad = r#"{"xs":[2.0,1.0],"ys":[0.0,1.0]}"#;
        assert!(serde_json::from_str::<Table1d>(bad).is_err());
    }

    #[test]
    fn grid_is_bilinear_and_clamped() {
        let g = Grid2d::new(
            vec![0.0, 1.0],
            vec![0.0, 10.0],
            vec![vec![0.0, 1.0], vec![10.0, 11.0]],
        )
        .unwrap();
        assert_eq!(g.eval(0.5, 0.0), 0.5);
        assert_eq!(g.eval(0.5, 5.0), 5.5);
        assert_eq!(g.eval(2.0, 20.0), 11.0);
        assert_eq!(g.eval(-1.0, -1.0), 0.0);
        assert!(Grid2d::new(vec![0.0, 1.0], vec![0.0], vec![vec![0.0]]).is_err());
        assert!(Grid2d::new(vec![0.0, 1.0], vec![0.0], vec![vec![0.0, 1.0, 2.0]]).is_err());
    }

    #[test]
    fn wire_form_round_trips() {
        let g = Grid2d::new(vec![0.0, 1.0], vec![2.0], vec![vec![3.0, 4.0]]).unwrap();
        let back: Grid2d = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(g, back);
        let t = Table1d::new(vec![0.0, 1.0], vec![5.0, 6.0]).unwrap();
        let back: Table1d = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(t, back);
    }
}
