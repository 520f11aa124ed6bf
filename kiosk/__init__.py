"""The ticket kiosk: service buttons (gpiozero) or a touch menu, and a thermal printer
(python-escpos) that prints only numbers the hub confirmed."""
