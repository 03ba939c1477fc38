"""A small live loss plot, drawn with QPainter (no plotting library).

plot = LossPlot()
plot.add(step, loss)       # as TrainStep events arrive; redraws itself
plot.clear()
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["LossPlot"]

_MARGIN_LEFT, _MARGIN = 52, 12
_LINE = QColor(37, 99, 235)


class LossPlot(QWidget):
    """Loss against step: a line, the axes' ranges and the latest value."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[tuple[int, float]] = []
        self.steps = 0
        self.setMinimumSize(QSize(360, 160))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Training loss plot")

    def sizeHint(self) -> QSize:
        return QSize(520, 220)

    def set_steps(self, steps: int) -> None:
        """The x axis runs to ``steps``."""
        self.steps = steps
        self.update()

    def add(self, step: int, loss: float) -> None:
        """One more point (the plot redraws)."""
        self.points.append((step, loss))
        self.update()

    def clear(self) -> None:
        """No points."""
        self.points.clear()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        area = QRectF(self.rect()).adjusted(_MARGIN_LEFT, _MARGIN, -_MARGIN, -_MARGIN - 14)
        painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
        painter.drawRect(area)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        if not self.points:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "The loss appears here")
            return
        low = min(v for _, v in self.points)
        high = max(v for _, v in self.points)
        span = (high - low) or 1.0
        last_step = max(self.steps, self.points[-1][0], 1)

        def at(step: int, loss: float) -> QPointF:
            x = area.left() + area.width() * (step / last_step)
            y = area.bottom() - area.height() * ((loss - low) / span)
            return QPointF(x, y)

        flags = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for value, y in ((high, area.top()), (low, area.bottom())):
            painter.drawText(QRectF(0, y - 8, _MARGIN_LEFT - 6, 16), flags, f"{value:.3g}")
        step, loss = self.points[-1]
        painter.drawText(
            QRectF(area.left(), area.bottom() + 2, area.width(), 14),
            Qt.AlignmentFlag.AlignRight,
            f"step {step}: loss {loss:.3f}",
        )
        painter.drawText(QRectF(area.left(), area.bottom() + 2, 80, 14), 0, "0")
        painter.setPen(QPen(_LINE, 2))
        painter.drawPolyline(QPolygonF([at(s, v) for s, v in self.points]))
